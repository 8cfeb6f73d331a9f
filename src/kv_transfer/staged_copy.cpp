#include "kv_transfer/staged_copy.h"

#include <algorithm>
#include <future>
#include <vector>

namespace baton {

std::vector<StagedChunk> staged_chunks(const std::vector<BlockRun>& runs, size_t block_bytes, size_t staging_bytes,
                                       bool use_remote) {
  const int64_t chunk_blocks = std::max<int64_t>(1, static_cast<int64_t>(staging_bytes / block_bytes));
  std::vector<StagedChunk> chunks;
  for (const auto& run : runs) {
    const int64_t first = use_remote ? run.remote_first : run.local_first;
    for (int64_t b = 0; b < run.num_blocks; b += chunk_blocks) {
      const int64_t n = std::min(chunk_blocks, run.num_blocks - b);
      chunks.push_back({first + b, static_cast<size_t>(n) * block_bytes});
    }
  }
  return chunks;
}

size_t staging_buffer_bytes(const std::vector<StagedChunk>& chunks) {
  size_t most = 0;
  for (const auto& c : chunks) most = std::max(most, c.num_bytes);
  return most;
}

Status run_staged(StageDirection direction, size_t num_chunks, std::array<uint8_t*, 2> buffers, const StageFn& copy,
                  const StageFn& io) {
  if (num_chunks == 0) return Status::ok();
  if (buffers[0] == nullptr || buffers[1] == nullptr || buffers[0] == buffers[1]) {
    return invalid_argument("staged copy: needs two distinct staging buffers");
  }
  auto copy_async = [&](size_t i) { return std::async(std::launch::async, copy, i, buffers[i % 2]); };
  std::future<Status> pending;
  if (direction == StageDirection::kToHost) {
    pending = copy_async(0);
    for (size_t i = 0; i < num_chunks; ++i) {
      Status copied = pending.get();  // chunk i is in buffers[i % 2]
      if (!copied.is_ok()) return copied;
      // buffers[(i + 1) % 2] was sent by io(i - 1): free for the next copy.
      if (i + 1 < num_chunks) pending = copy_async(i + 1);
      Status sent = io(i, buffers[i % 2]);
      if (!sent.is_ok()) {
        if (pending.valid()) pending.wait();
        return sent;
      }
    }
    return Status::ok();
  }
  for (size_t i = 0; i < num_chunks; ++i) {
    // buffers[i % 2] was last emptied by copy(i - 2), which finished before copy(i - 1) started.
    Status read = io(i, buffers[i % 2]);
    if (!read.is_ok()) {
      if (pending.valid()) pending.wait();
      return read;
    }
    if (pending.valid()) {
      Status copied = pending.get();
      if (!copied.is_ok()) return copied;
    }
    pending = copy_async(i);
  }
  return pending.get();
}

}  // namespace baton

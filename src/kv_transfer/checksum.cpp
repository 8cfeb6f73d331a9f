#include "kv_transfer/checksum.h"

#include <xxhash.h>

namespace baton {

uint64_t block_checksum(const void* data, size_t num_bytes) { return XXH64(data, num_bytes, /*seed=*/0); }

std::vector<uint64_t> run_checksums(const uint8_t* base, size_t block_bytes, const std::vector<BlockRun>& runs,
                                    bool use_remote) {
  std::vector<uint64_t> sums;
  sums.reserve(static_cast<size_t>(count_blocks(runs)));
  for (const auto& run : runs) {
    const int64_t first = use_remote ? run.remote_first : run.local_first;
    for (int64_t b = 0; b < run.num_blocks; ++b) {
      sums.push_back(block_checksum(base + static_cast<size_t>(first + b) * block_bytes, block_bytes));
    }
  }
  return sums;
}

Status verify_run_checksums(const KvRegionDesc& local, const std::vector<BlockRun>& runs,
                            const std::vector<uint64_t>& expected) {
  if (local.memory != MemoryKind::kHost) {
    return unimplemented("KV checksums need host memory; this region is on device {}", local.device_id);
  }
  const size_t n = static_cast<size_t>(count_blocks(runs));
  if (expected.size() != n) {
    return data_loss("peer sent {} block checksums for {} blocks", expected.size(), n);
  }
  size_t i = 0;
  for (const auto& run : runs) {
    for (int64_t b = 0; b < run.num_blocks; ++b, ++i) {
      const uint64_t got = block_checksum(local.block_ptr(run.local_first + b), local.block_bytes());
      if (got != expected[i]) {
        return data_loss(
            "KV checksum mismatch: remote block {} -> local block {} (xxh64 {:016x}, expected "
            "{:016x})",
            run.remote_first + b, run.local_first + b, got, expected[i]);
      }
    }
  }
  return Status::ok();
}

}  // namespace baton

#include "kv_transfer/multi_stream_read.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "common/log.h"
#include "kv_transfer/staged_copy.h"
#include "kv_transfer/stream_split.h"

namespace baton {

namespace {
// How often the supervising thread looks at the read's cancel flag.
constexpr auto kSuperviseSlice = std::chrono::milliseconds(10);

std::string part_name(const StreamPart& part, size_t index, size_t num_parts, int64_t num_blocks,
                      const std::string& peer) {
  return fmt::format("tcp stream {} of {} (blocks {}..{} of {}) from KV peer {}", index + 1, num_parts,
                     part.first_index, part.first_index + part.num_blocks, num_blocks, peer);
}
}  // namespace

Result<std::vector<uint64_t>> read_blocks_multi_stream(AgentClient& client, const std::vector<BlockRun>& runs,
                                                       const KvRegionDesc& local, bool want_checksums,
                                                       const ReadContext& ctx, StagingPool* staging,
                                                       const MultiStreamOptions& options) {
  const int64_t num_blocks = count_blocks(runs);
  int num_parts = num_stream_parts(num_blocks, local.block_bytes(), options.num_streams, options.min_stream_bytes);
  if (num_parts <= 1) return client.read_blocks(runs, local, want_checksums, ctx, staging);

  // Device KV: one staging pair a part; only the first is waited for.
  std::vector<StagingPool::Lease> leases;
  size_t chunk_bytes = 0;
  if (local.memory == MemoryKind::kDevice) {
    if (local.copier == nullptr) return unimplemented("tcp transport: device KV region without a staging copier");
    if (staging == nullptr) return failed_precondition("tcp transport: device KV region without a staging pool");
    chunk_bytes = staging->buffer_bytes();
    // A part's chunks are pieces of the whole read's chunks: this fits them all.
    const size_t lease_bytes = staging_buffer_bytes(
        staged_chunks(runs, local.block_bytes(), chunk_bytes, /*use_remote=*/false));
    BATON_ASSIGN_OR_RETURN(auto first, staging->acquire(lease_bytes, ctx));
    leases.push_back(std::move(first));
    while (static_cast<int>(leases.size()) < num_parts) {
      auto more = staging->try_acquire(lease_bytes);
      if (!more.is_ok()) break;
      leases.push_back(std::move(more).value());
    }
    if (static_cast<int>(leases.size()) < num_parts) {
      BATON_LOG_DEBUG("tcp read from {}: {} of {} staging pairs free, {} streams", client.address(), leases.size(),
                      num_parts, leases.size());
      num_parts = static_cast<int>(leases.size());
    }
    if (num_parts <= 1) return client.read_blocks_leased(runs, local, want_checksums, ctx, &leases[0], chunk_bytes);
  }
  const std::vector<StreamPart> parts = split_runs_for_streams(runs, num_parts);

  // The parts share the read's deadline and a cancel flag of their own,
  // raised by the first failure or by the read's cancellation.
  std::atomic<bool> stop{false};
  const ReadContext part_ctx{ctx.deadline, &stop, ctx.grant};
  std::mutex mu;
  std::condition_variable cv;
  size_t num_finished = 0;
  int first_failed = -1;
  std::vector<Status> statuses(parts.size());
  std::vector<std::vector<uint64_t>> sums(parts.size());
  auto run_part = [&](size_t i) {
    const StagingPool::Lease* lease = leases.empty() ? nullptr : &leases[i];
    auto got = client.read_blocks_leased(parts[i].runs, local, want_checksums, part_ctx, lease, chunk_bytes);
    std::lock_guard<std::mutex> lock(mu);
    if (got.is_ok()) {
      sums[i] = std::move(got).value();
    } else {
      statuses[i] = got.status();
      if (first_failed < 0) {
        first_failed = static_cast<int>(i);
        stop = true;
      }
    }
    ++num_finished;
    cv.notify_all();
  };

  std::vector<std::thread> threads;
  threads.reserve(parts.size());
  Status spawn_error;
  for (size_t i = 0; i < parts.size(); ++i) {
    try {
      threads.emplace_back(run_part, i);
    } catch (const std::system_error& e) {
      spawn_error = resource_exhausted("tcp read from KV peer {}: cannot start stream thread: {}", client.address(),
                                       e.what());
      stop = true;
      break;
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    while (num_finished < threads.size()) {
      cv.wait_for(lock, kSuperviseSlice);
      if (ctx.is_cancelled()) stop = true;
    }
  }
  for (auto& t : threads) t.join();
  if (!spawn_error.is_ok()) return spawn_error;
  if (ctx.is_cancelled()) {
    return aborted("tcp read of {} blocks from KV peer {} cancelled", num_blocks, client.address());
  }
  if (first_failed >= 0) {
    const size_t i = static_cast<size_t>(first_failed);
    return statuses[i].with_context(part_name(parts[i], i, parts.size(), num_blocks, client.address()));
  }
  std::vector<uint64_t> all;
  if (want_checksums) {
    all.reserve(static_cast<size_t>(num_blocks));
    for (size_t i = 0; i < parts.size(); ++i) {
      if (static_cast<int64_t>(sums[i].size()) != parts[i].num_blocks) {
        return data_loss("{}: {} checksums for {} blocks",
                         part_name(parts[i], i, parts.size(), num_blocks, client.address()), sums[i].size(),
                         parts[i].num_blocks);
      }
      all.insert(all.end(), sums[i].begin(), sums[i].end());
    }
  }
  return all;
}

}  // namespace baton

// KvPull: one decode request's pull of its prompt's KV from the prefill
// instance named by its kv_transfer_params. The blocks the local prefix
// cache already holds are skipped; the rest are read as ONE batched read,
// renewing the prefill's lease while it runs; whatever happens once the peer
// is reached, the prefill side is told "done" (it may then free the blocks).
// Streamed KV (params "stream_kv"): the prefill is still computing; the pull
// long-polls its agent for progress and reads each batch of blocks as soon
// as it is final, so that the transfer hides behind the prefill's compute.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "engine/kv_connector.h"
#include "kv_transfer/kv_secret.h"
#include "kv_transfer/transfer_engine.h"
#include "kv_transfer/transfer_params.h"

namespace baton {

// A pull's cancellation, shared by the connector (which cancels on abort or
// stop) and the loader running it. Thread-safe.
class PullCancel {
 public:
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  // The read in flight: cancelled at once when the pull already is.
  void attach(std::shared_ptr<TransferHandle> handle);

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::shared_ptr<TransferHandle> handle_;
};

struct PullCounts {
  int64_t num_blocks_pulled = 0;     // read from the peer
  int64_t num_blocks_local_hit = 0;  // skipped: the local prefix cache held them
};

class KvPull {
 public:
  // `transfer` has the decode's KV registered; `block_size` is its layout's.
  KvPull(TransferEngine& transfer, std::shared_ptr<const KvSecret> secret, int block_size,
         std::function<int64_t()> wall_now_ms);

  // Called with the local block ids of every read that completed, before
  // the pull returns (a tensor-parallel decode scatters them to its ranks);
  // an error it returns fails the pull. Set before the first run.
  void set_on_read(std::function<Status(const std::vector<int64_t>&)> on_read) { on_read_ = std::move(on_read); }

  // Runs the pull of `load` (on the calling thread) and fills `counts`.
  Status run(const KvLoadRequest& load, PullCancel& cancel, PullCounts* counts);
  // Tells the prefill named by `params` that its lease will never be read
  // (the request ended before its pull started).
  Status abandon(const Json& params);

 private:
  // Reads remote -> local, renewing the lease every third of its length.
  Status read_renewing(const std::string& peer, const KvGrant& grant, const TransferParams& p,
                       const KvLoadRequest& load, std::vector<int64_t> remote, std::vector<int64_t> local,
                       PullCancel& cancel);
  void renew(const std::string& peer, const KvGrant& grant);
  // Streamed: reads blocks [first, end) of the prompt as the prefill makes
  // them final (their remote ids come with the progress answers).
  Status read_streamed(const std::string& peer, const KvGrant& grant, const TransferParams& p,
                       const KvLoadRequest& load, int first, int end, PullCancel& cancel);

  TransferEngine& transfer_;
  std::shared_ptr<const KvSecret> secret_;
  int block_size_;
  std::function<int64_t()> wall_now_ms_;
  std::function<Status(const std::vector<int64_t>&)> on_read_;
};

}  // namespace baton

// One instance over several ranks (tensor parallelism, docs/parallelism.md):
// the engine sees one Backend; each step runs on every rank at once, each
// rank on its own worker thread with its own model slice and KV cache slice,
// and rank 0's samples are the step's. The scheduler stays one per instance.
//
// The ranks are joined by Communicators owned here. A rank that fails
// mid-step breaks their group, so the other ranks return instead of waiting;
// every later step then fails at once with that error, and health() reports
// it (the instance is done, no request waits forever). A rank that hangs in
// its own work makes its peers time out at their next collective; once a
// rank has failed, the others get `hang_timeout` to return, and a rank still
// running then is reported hung: the step fails, health() says which rank,
// and the instance stops (a thread cannot be killed: the process exits). A
// step's invalid input fails on every rank before any collective and leaves
// the instance usable.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "backend/communicator.h"

namespace baton {

class TensorParallelBackend final : public Backend {
 public:
  // ranks[r] is rank r, made with comms[r] (which must outlive it: both are
  // kept here, the ranks destroyed first). At least two ranks.
  static Result<std::unique_ptr<TensorParallelBackend>> create(
      std::vector<std::unique_ptr<Communicator>> comms, std::vector<std::unique_ptr<Backend>> ranks,
      std::chrono::milliseconds hang_timeout = kDefaultHangTimeout);
  static constexpr std::chrono::milliseconds kDefaultHangTimeout{2000};
  // Joins the workers: a hung rank must have returned by then (the process
  // exits rather than destroying a hung instance).
  ~TensorParallelBackend() override;
  TensorParallelBackend(const TensorParallelBackend&) = delete;
  TensorParallelBackend& operator=(const TensorParallelBackend&) = delete;

  const ModelConfig& model_config() const override { return ranks_.front()->model_config(); }
  std::string device_name() const override;  // "cpu (tensor parallel x2)"
  // All ranks' blocks together: one engine block is a block on every rank.
  size_t kv_block_bytes(int block_size) const override;
  size_t available_kv_bytes() const override;
  Status init_kv_cache(int num_blocks, int block_size) override;
  // Rank 0's slice of the cache (its KV heads only), with every rank's
  // cache in rank_bases and how the KV heads lie across them in tp.
  KvMemory kv_memory() override;
  Result<StepOutput> execute(const StepInput& in) override;
  Status health() const override;
  // Breaks the group for good with `cause`, as a failed rank does: the ranks'
  // pending and later collectives fail with it and health() reports it. Any
  // thread (an operator's stop, a supervisor that lost a rank).
  void abort(const Status& cause);

  int world_size() const { return static_cast<int>(ranks_.size()); }
  Backend& rank(int r) { return *ranks_[r]; }

 private:
  TensorParallelBackend(std::vector<std::unique_ptr<Communicator>> comms, std::vector<std::unique_ptr<Backend>> ranks,
                        std::chrono::milliseconds hang_timeout);
  void worker_loop(int rank);
  // Under mu_: records rank r's result of the current step.
  void record_locked(int rank, Result<StepOutput> out);
  // Under mu_: the error naming the ranks still running the current step
  // hang_timeout_ after rank 0 returned or a rank failed; ok otherwise.
  Status hang_locked(std::chrono::steady_clock::time_point now) const;

  std::vector<std::unique_ptr<Communicator>> comms_;
  std::vector<std::unique_ptr<Backend>> ranks_;
  std::vector<std::thread> workers_;  // ranks 1..N-1; rank 0 runs on the caller's thread

  const std::chrono::milliseconds hang_timeout_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  // The step in flight, a copy the workers share: a hung rank may read it
  // after execute() has returned.
  std::shared_ptr<const StepInput> step_;
  uint64_t step_id_ = 0;
  int pending_ = 0;  // ranks (rank 0 included) still running step_id_
  bool stop_ = false;
  std::vector<std::optional<Result<StepOutput>>> results_;  // [world_size]: the ranks' outputs
  // When rank 0 returned or a rank failed in the current step, whichever came
  // first: from then on the other ranks have hang_timeout_ to return.
  std::optional<std::chrono::steady_clock::time_point> hang_clock_;
  Status broken_;  // the error that ended the group; ok while it works
};

}  // namespace baton

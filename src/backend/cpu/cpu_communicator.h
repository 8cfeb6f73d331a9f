// A Communicator for ranks that are threads of one process: the ranks share
// one buffer and meet at a barrier (a mutex and a condition variable). The
// CPU backend's tensor parallelism runs over it, and tests use it as the
// reference for other communicators.
//
// all_reduce_sum is a reduce-scatter then an all-gather through the shared
// buffer: rank r sums its 1/N of the elements over all ranks (rank 0 first),
// then every rank copies the whole sum back, so all ranks hold the same bits.
// A rank that waits longer than `timeout` at a barrier breaks the group
// (kDeadlineExceeded naming the rank), and so does abort().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/communicator.h"

namespace baton {

// The shared state of one group of ranks (cpu_communicator.cpp).
class CpuCommGroup;

class CpuCommunicator final : public Communicator {
 public:
  // One communicator per rank of a new group of `world_size` ranks.
  static std::vector<std::unique_ptr<CpuCommunicator>> make_group(int world_size, std::chrono::milliseconds timeout);

  int rank() const override { return rank_; }
  int world_size() const override;
  Status all_reduce_sum(float* data, int64_t count) override;
  Status all_gather(const float* in, int64_t count, float* out) override;
  Status broadcast(float* data, int64_t count, int root) override;
  void abort(const Status& cause) override;

  CpuCommunicator(std::shared_ptr<CpuCommGroup> group, int rank) : group_(std::move(group)), rank_(rank) {}

 private:
  // Publishes this rank's buffer and count, waits for every rank, and checks
  // that all passed the same count.
  Status publish(const float* data, int64_t count);

  std::shared_ptr<CpuCommGroup> group_;
  int rank_ = 0;
};

}  // namespace baton

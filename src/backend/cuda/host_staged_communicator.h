// A DeviceCommunicator that runs the CPU communicator over host copies: each
// collective waits for the rank's stream, copies the device buffer to the
// host, meets the other ranks in a CpuCommunicator and copies the result
// back. Slow and not capturable into CUDA graphs (the backend then runs
// eagerly); it lets several ranks share one GPU, which NCCL refuses, so the
// CUDA backend's sharded forward pass is tested against TP=1 on one card.
// bf16 sums are taken in fp32 (rank 0 first) and rounded once.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "backend/cpu/cpu_communicator.h"
#include "backend/cuda/device_communicator.h"

namespace baton::cuda {

class HostStagedCommunicator final : public DeviceCommunicator {
 public:
  // One communicator per rank of a new group of `world_size` ranks; a rank
  // that waits longer than `timeout` for the others breaks the group.
  static std::vector<std::unique_ptr<HostStagedCommunicator>> make_group(int world_size,
                                                                         std::chrono::milliseconds timeout);
  explicit HostStagedCommunicator(std::unique_ptr<CpuCommunicator> cpu) : cpu_(std::move(cpu)) {}

  int rank() const override { return cpu_->rank(); }
  int world_size() const override { return cpu_->world_size(); }
  Status all_reduce_sum(float* data, int64_t count) override;
  Status all_reduce_sum_bf16(bf16* data, int64_t count) override;
  Status all_gather(const float* in, int64_t count, float* out) override;
  Status broadcast(float* data, int64_t count, int root) override;
  void abort(const Status& cause) override { cpu_->abort(cause); }
  void set_stream(cudaStream_t stream) override { stream_ = stream; }
  bool capturable() const override { return false; }
  Status health() override { return failure_; }
  std::string kind() const override { return "host-staged"; }

 private:
  // Copies `bytes` between device and host on the rank's stream and waits.
  Status copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
  // Remembers a failed collective for health().
  Status note(Status st);

  std::unique_ptr<CpuCommunicator> cpu_;
  cudaStream_t stream_ = nullptr;
  std::vector<float> host_;
  std::vector<float> gathered_;
  std::vector<bf16> host_bf16_;
  Status failure_;
};

}  // namespace baton::cuda

// A DeviceCommunicator over NCCL: the tensor-parallel ranks of one process,
// one GPU each, joined in process (ncclCommInitAll: no bootstrap over the
// network). Collectives are queued on the rank's stream and may be captured
// into CUDA graphs (NCCL >= 2.9). NVLink multicast (NVLS) is left off
// (NCCL_NVLS_ENABLE=0 unless the environment says otherwise).
//
// The ranks share one group: abort() from any rank, or an asynchronous NCCL
// error seen by health(), aborts every rank's communicator (ncclCommAbort),
// which ends their pending kernels, and every later call returns the cause.
//
// NCCL comes with the CUDA toolkit, not with Debian: a build that did not
// find it has NcclCommunicator::available() false and make_group refuses.
#pragma once

#include <memory>
#include <vector>

#include "backend/cuda/device_communicator.h"

namespace baton::cuda {

// The state the ranks of one group share (nccl_communicator.cpp).
class NcclGroup;

class NcclCommunicator final : public DeviceCommunicator {
 public:
  // Whether this build links NCCL.
  static bool available();
  // One communicator per entry of `devices` (rank r on CUDA device
  // devices[r]); an error naming NCCL's reason when it cannot join them
  // (NCCL refuses two ranks on one device) or when this build has no NCCL.
  static Result<std::vector<std::unique_ptr<NcclCommunicator>>> make_group(const std::vector<int>& devices);

  NcclCommunicator(std::shared_ptr<NcclGroup> group, int rank) : group_(std::move(group)), rank_(rank) {}

  int rank() const override { return rank_; }
  int world_size() const override;
  Status all_reduce_sum(float* data, int64_t count) override;
  Status all_reduce_sum_bf16(bf16* data, int64_t count) override;
  Status all_gather(const float* in, int64_t count, float* out) override;
  Status broadcast(float* data, int64_t count, int root) override;
  void abort(const Status& cause) override;
  void set_stream(cudaStream_t stream) override { stream_ = stream; }
  bool capturable() const override { return true; }
  Status health() override;
  std::string kind() const override { return "nccl"; }

 private:
  std::shared_ptr<NcclGroup> group_;
  int rank_ = 0;
  cudaStream_t stream_ = nullptr;
};

}  // namespace baton::cuda

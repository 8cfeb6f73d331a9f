#include "backend/cuda/host_staged_communicator.h"

#include "backend/cuda/cuda_common.h"

namespace baton::cuda {

std::vector<std::unique_ptr<HostStagedCommunicator>> HostStagedCommunicator::make_group(
    int world_size, std::chrono::milliseconds timeout) {
  std::vector<std::unique_ptr<HostStagedCommunicator>> ranks;
  for (std::unique_ptr<CpuCommunicator>& cpu : CpuCommunicator::make_group(world_size, timeout))
    ranks.push_back(std::make_unique<HostStagedCommunicator>(std::move(cpu)));
  return ranks;
}

Status HostStagedCommunicator::copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  BATON_CUDA_RETURN(cudaMemcpyAsync(dst, src, bytes, kind, stream_));
  BATON_CUDA_RETURN(cudaStreamSynchronize(stream_));
  return Status::ok();
}

Status HostStagedCommunicator::note(Status st) {
  if (!st.is_ok() && failure_.is_ok()) failure_ = st;
  return st;
}

Status HostStagedCommunicator::all_reduce_sum(float* data, int64_t count) {
  host_.resize(count);
  BATON_RETURN_IF_ERROR(note(copy(host_.data(), data, count * sizeof(float), cudaMemcpyDeviceToHost)));
  BATON_RETURN_IF_ERROR(note(cpu_->all_reduce_sum(host_.data(), count)));
  return note(copy(data, host_.data(), count * sizeof(float), cudaMemcpyHostToDevice));
}

Status HostStagedCommunicator::all_reduce_sum_bf16(bf16* data, int64_t count) {
  host_bf16_.resize(count);
  host_.resize(count);
  BATON_RETURN_IF_ERROR(note(copy(host_bf16_.data(), data, count * sizeof(bf16), cudaMemcpyDeviceToHost)));
  for (int64_t i = 0; i < count; ++i) host_[i] = __bfloat162float(host_bf16_[i]);
  BATON_RETURN_IF_ERROR(note(cpu_->all_reduce_sum(host_.data(), count)));
  for (int64_t i = 0; i < count; ++i) host_bf16_[i] = __float2bfloat16(host_[i]);
  return note(copy(data, host_bf16_.data(), count * sizeof(bf16), cudaMemcpyHostToDevice));
}

Status HostStagedCommunicator::all_gather(const float* in, int64_t count, float* out) {
  host_.resize(count);
  gathered_.resize(static_cast<size_t>(count) * world_size());
  BATON_RETURN_IF_ERROR(note(copy(host_.data(), in, count * sizeof(float), cudaMemcpyDeviceToHost)));
  BATON_RETURN_IF_ERROR(note(cpu_->all_gather(host_.data(), count, gathered_.data())));
  return note(copy(out, gathered_.data(), gathered_.size() * sizeof(float), cudaMemcpyHostToDevice));
}

Status HostStagedCommunicator::broadcast(float* data, int64_t count, int root) {
  host_.resize(count);
  BATON_RETURN_IF_ERROR(note(copy(host_.data(), data, count * sizeof(float), cudaMemcpyDeviceToHost)));
  BATON_RETURN_IF_ERROR(note(cpu_->broadcast(host_.data(), count, root)));
  return note(copy(data, host_.data(), count * sizeof(float), cudaMemcpyHostToDevice));
}

}  // namespace baton::cuda

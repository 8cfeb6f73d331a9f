#include "backend/cuda/cuda_tensor_parallel.h"

#include <algorithm>

#include <fmt/format.h>

#include "backend/cuda/nccl_communicator.h"

namespace baton::cuda {

Result<std::vector<int>> choose_tp_devices(const std::vector<int>& gpus, int n) {
  int visible = 0;
  BATON_CUDA_RETURN(cudaGetDeviceCount(&visible));
  std::vector<int> devices = gpus;
  if (devices.empty()) {
    if (n > visible)
      return invalid_argument("--tensor-parallel-size {} needs {} GPUs but {} visible (CUDA_VISIBLE_DEVICES)", n, n,
                              visible);
    for (int d = 0; d < n; ++d) devices.push_back(d);
  }
  if (static_cast<int>(devices.size()) != n)
    return invalid_argument("--gpus lists {} devices but --tensor-parallel-size is {}: give one GPU per rank",
                            devices.size(), n);
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i] < 0 || devices[i] >= visible)
      return invalid_argument("--gpus: device {} does not exist ({} visible, numbered from 0)", devices[i], visible);
    if (std::count(devices.begin(), devices.end(), devices[i]) > 1)
      return invalid_argument("--gpus lists device {} twice: each rank needs its own GPU", devices[i]);
  }
  return devices;
}

Result<std::unique_ptr<TensorParallelBackend>> make_cuda_tensor_parallel(
    const ModelConfig& model, const CudaBackendOptions& base, const std::vector<int>& devices,
    std::vector<std::unique_ptr<DeviceCommunicator>> comms, const CudaRankMaker& make_rank) {
  const int n = static_cast<int>(comms.size());
  if (static_cast<int>(devices.size()) != n)
    return invalid_argument("{} devices for {} tensor parallel ranks", devices.size(), n);
  std::vector<std::unique_ptr<Communicator>> owned;
  std::vector<std::unique_ptr<Backend>> ranks;
  for (int r = 0; r < n; ++r) {
    BATON_ASSIGN_OR_RETURN(TpShard shard, TpShard::make(model, r, n, base.enable_expert_parallel));
    CudaBackendOptions o = base;
    o.device_id = devices[r];
    o.gpu_memory_utilization = base.gpu_memory_utilization /
                               static_cast<double>(std::count(devices.begin(), devices.end(), devices[r]));
    Result<std::unique_ptr<CudaBackend>> rank = make_rank(o, CudaTpRank{shard, comms[r].get()});
    if (!rank.is_ok())
      return rank.status().with_context(fmt::format("tensor parallel rank {} of {} on GPU {}", r, n, devices[r]));
    ranks.push_back(std::move(rank).value());
    owned.push_back(std::move(comms[r]));
  }
  return TensorParallelBackend::create(std::move(owned), std::move(ranks));
}

namespace {

// N ranks over NCCL on `gpus` (or the first N visible devices).
Result<std::unique_ptr<Backend>> make_cuda_ranks(const Checkpoint& ckpt, const CudaBackendOptions& o,
                                                 const std::vector<int>& gpus, int n) {
  BATON_RETURN_IF_ERROR(check_tensor_parallel(ckpt.config(), n, o.enable_expert_parallel));
  BATON_ASSIGN_OR_RETURN(std::vector<int> devices, choose_tp_devices(gpus, n));
  BATON_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<NcclCommunicator>> nccl, NcclCommunicator::make_group(devices));
  std::vector<std::unique_ptr<DeviceCommunicator>> comms;
  for (auto& c : nccl) comms.push_back(std::move(c));
  CudaRankMaker make_rank = [&ckpt](const CudaBackendOptions& ro, const CudaTpRank& rank) {
    return CudaBackend::create(ckpt, ro, rank);
  };
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<TensorParallelBackend> tp,
                         make_cuda_tensor_parallel(ckpt.config(), o, devices, std::move(comms), make_rank));
  return std::unique_ptr<Backend>(std::move(tp));
}

}  // namespace

Result<std::unique_ptr<Backend>> make_cuda_backend(const Checkpoint& ckpt, const BackendOptions& options) {
  CudaBackendOptions o;
  o.device_id = options.device_id;
  o.gpu_memory_utilization = options.gpu_memory_utilization;
  o.batch_invariant = options.batch_invariant;
  o.enable_expert_parallel = options.enable_expert_parallel;
  o.kv_dtype = resolve_kv_cache_dtype(options.kv_cache_dtype, DType::kBF16);
  const int n = options.tensor_parallel_size;
  if (n <= 1) {
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> b, CudaBackend::create(ckpt, o));
    return std::unique_ptr<Backend>(std::move(b));
  }
  Result<std::unique_ptr<Backend>> tp = make_cuda_ranks(ckpt, o, options.gpus, n);
  if (!tp.is_ok()) return tp.status().with_context(fmt::format("--tensor-parallel-size {} on cuda", n));
  return tp;
}

void register_cuda_backend() { register_backend("cuda", &make_cuda_backend); }

}  // namespace baton::cuda

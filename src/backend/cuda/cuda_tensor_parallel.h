// The CUDA backend at --tensor-parallel-size N (docs/parallelism.md): one
// CudaBackend rank per GPU, each on its own device and stream with its slice
// of the weights, KV cache and CUDA graphs, driven by TensorParallelBackend's
// worker threads (one per rank) and joined by DeviceCommunicators: NCCL in
// serving, host-staged CPU collectives to test several ranks on one GPU.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/tensor_parallel_backend.h"

namespace baton::cuda {

// The devices of n ranks: `gpus` (--gpus; each once, each visible) or,
// when empty, the first n visible devices (CUDA_VISIBLE_DEVICES applies).
Result<std::vector<int>> choose_tp_devices(const std::vector<int>& gpus, int n);

// Makes rank `rank.shard.rank` with `options` (its device set): from a
// checkpoint, or random weights.
using CudaRankMaker =
    std::function<Result<std::unique_ptr<CudaBackend>>(const CudaBackendOptions& options, const CudaTpRank& rank)>;

// comms.size() ranks of `model`, rank r on devices[r] over comms[r]. Ranks
// that share a device split its gpu_memory_utilization.
Result<std::unique_ptr<TensorParallelBackend>> make_cuda_tensor_parallel(
    const ModelConfig& model, const CudaBackendOptions& base, const std::vector<int>& devices,
    std::vector<std::unique_ptr<DeviceCommunicator>> comms, const CudaRankMaker& make_rank);

}  // namespace baton::cuda

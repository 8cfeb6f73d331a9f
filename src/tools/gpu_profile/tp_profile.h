// `baton profile --tensor-parallel-size N`'s parts (cuda_profile.h): the
// instance of N CUDA ranks over NCCL with random weights, and the
// all-reduce's bus bandwidth measured on the same GPUs in the same run.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "common/json.h"
#include "common/status.h"

namespace baton::cuda {

// N ranks of `config` (random weights, seed), one per device of `gpus` (or
// the first N visible), joined by NCCL.
Result<std::unique_ptr<Backend>> make_random_tensor_parallel(const ModelConfig& config, const CudaBackendOptions& o,
                                                             int tensor_parallel_size, const std::vector<int>& gpus,
                                                             uint64_t seed);

// Every CudaBackend of `b` (itself, or a tensor-parallel instance's ranks).
void for_each_cuda_rank(Backend& b, const std::function<void(CudaBackend&)>& fn);

// ncclAllReduce (bf16, sum) over N ranks on `gpus` (or the first N visible):
// per message size, the median time and the bus bandwidth (nccl-tests'
// definition: bytes x 2(N-1)/N / time; both 0 at one rank, where NCCL moves
// nothing). Rows: {"bytes", "us", "algbw_gbps", "busbw_gbps"}.
Result<Json> measure_all_reduce(int tensor_parallel_size, const std::vector<int>& gpus,
                                const std::vector<size_t>& sizes_bytes, int iters);

}  // namespace baton::cuda

// Makes a Backend by device name. "cpu" is built in; other devices (the CUDA
// backend) are registered explicitly by the program that links them, before
// it makes a backend (cli/main.cpp calls cuda::register_cuda_backend()), so a
// build without them simply has no maker and says so.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"
#include "kv/kv_cache_dtype.h"
#include "model/checkpoint.h"

namespace baton {

struct BackendOptions {
  int num_threads = 0;                  // CPU: worker threads; 0 = hardware_concurrency
  size_t cpu_kv_cache_bytes = 0;        // CPU: bytes offered to the KV cache; 0 = 1 GiB
  int device_id = 0;                    // CUDA: device ordinal
  double gpu_memory_utilization = 0.9;  // CUDA: share of device memory to use
  bool batch_invariant = false;         // CUDA: results independent of batch shape (slower)
  // What the KV cache stores (--kv-cache-dtype): auto = the backend's dtype, fp8 = e4m3.
  KvCacheDType kv_cache_dtype = KvCacheDType::kAuto;
  // Ranks of one instance (--tensor-parallel-size); the CPU backend runs
  // them as threads over a CpuCommunicator, the CUDA backend one per GPU
  // over NCCL; other devices take only 1.
  int tensor_parallel_size = 1;
  // --enable-expert-parallel: each MoE layer's routed experts spread whole
  // over the ranks (rank r holds experts [r*E/N, (r+1)*E/N)) instead of every
  // rank holding a slice of every expert; ignored by models without experts.
  bool enable_expert_parallel = false;
  // CUDA: the device of each rank (--gpus); empty: the first
  // tensor_parallel_size visible devices.
  std::vector<int> gpus = {};
};

using BackendMaker = Result<std::unique_ptr<Backend>> (*)(const Checkpoint& ckpt, const BackendOptions& options);

// Registers `maker` for `device`; a later registration of the same name
// replaces the earlier.
void register_backend(const std::string& device, BackendMaker maker);

// Device names with a maker, sorted ("cpu" always among them).
std::vector<std::string> registered_backends();

// The backend for `device`; kUnimplemented when this build has no such
// backend (e.g. "cuda" built without CUDA) or the device cannot run
// options.tensor_parallel_size ranks, kInvalidArgument for an unknown name or
// a model whose heads cannot be split across that many ranks.
Result<std::unique_ptr<Backend>> make_backend(const std::string& device, const Checkpoint& ckpt,
                                              const BackendOptions& options = {});

}  // namespace baton

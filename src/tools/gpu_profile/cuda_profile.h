// The GPU benchmark behind `baton profile` and baton_gpu_profile (a tool over
// the CUDA backend, not part of it): measures the
// card's ceilings (device copy bandwidth, cuBLASLt bf16 GEMM rate) and the
// CUDA backend's decode step and prefill times for model shapes, with
// bandwidth and FLOP utilisation against those ceilings, in one run; with
// tensor parallelism, also the NCCL all-reduce's bus bandwidth.
#pragma once

#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "tools/gpu_profile/step_builder.h"

namespace baton::cuda {

struct ProfileOptions {
  std::vector<std::string> presets = {"llama3.1-8b", "qwen3-30b-a3b"};  // model/presets.h names
  std::string checkpoint_dir;  // if set, profile this checkpoint instead of presets
  std::vector<int> decode_batches = {1, 8, 32, 64, 128, 256};
  int decode_context = 1024;
  std::vector<int> prefill_tokens = {512, 2048, 8192, 16384};
  std::vector<MixedStep> mixed_steps;  // none unless asked (--mixed-steps)
  // Decode batches whose step is also timed kernel by kernel inside its
  // graph (step_kernels.h); none unless asked (--kernel-costs).
  std::vector<int> kernel_cost_batches;
  int kernel_cost_rounds = 5;
  int decode_iters = 30;
  int prefill_iters = 5;
  double gpu_memory_utilization = 0.95;
  // Ranks of the profiled instance, one GPU each over NCCL (docs/parallelism.md);
  // utilisation is then against that many cards. gpus: their devices (empty:
  // the first N visible).
  int tensor_parallel_size = 1;
  bool enable_expert_parallel = false;  // MoE experts spread whole over the ranks
  std::vector<int> gpus;
  std::string json_path;  // written when set
  std::string md_path;    // written when set
};

// Runs everything; returns the JSON report (also written to the paths).
Result<Json> run_gpu_profile(const ProfileOptions& options);

}  // namespace baton::cuda

// `baton profile`: the GPU benchmark (tools/gpu_profile/cuda_profile.h): the card's
// ceilings, then decode step and prefill times of model shapes with random
// weights made on the GPU, written as JSON and Markdown. On a machine with
// no NVIDIA device it says "no GPU" before anything else (the CUDA runtime's
// own error there reads "driver version is insufficient").
#include <filesystem>
#include <iostream>
#include <regex>
#include <string>
#include <vector>

#include "cli/command.h"
#ifdef BATON_HAVE_CUDA
#include "tools/gpu_profile/cuda_profile.h"
#endif

namespace {

struct Args {
  std::vector<std::string> models = {"llama3.1-8b", "qwen3-30b-a3b"};
  std::string json_path = "perf-gpu.json";
  std::string md_path = "perf-gpu.md";
  bool quick = false;
  int decode_context = 1024;
  std::vector<int> decode_batches = {1, 8, 32, 64, 128, 256};
  std::vector<int> prefill_tokens = {512, 2048, 8192, 16384};
  double gpu_memory_utilization = 0.95;
  int tensor_parallel_size = 1;
  bool enable_expert_parallel = false;
  std::vector<int> gpus;
};

// Whether an NVIDIA GPU's device node (/dev/nvidia0, /dev/nvidia1, ...) exists:
// the driver creates one per GPU, and containers given a GPU see it.
bool has_nvidia_device() {
  static const std::regex kDeviceNode("nvidia[0-9]+");
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/dev", ec), end; !ec && it != end; it.increment(ec)) {
    if (std::regex_match(it->path().filename().string(), kDeviceNode)) return true;
  }
  return false;
}

baton::cli::RunFn setup(CLI::App& sub) {
  auto args = std::make_shared<Args>();
  sub.add_option("--models", args->models, "model presets to profile (model/presets.h names)")->delimiter(',');
  sub.add_option("--json", args->json_path, "where to write the JSON report");
  sub.add_option("--md", args->md_path, "where to write the Markdown report");
  sub.add_option("--gpu-memory-utilization", args->gpu_memory_utilization, "share of GPU memory to use")
      ->check(CLI::Range(0.05, 1.0));
  sub.add_flag("--quick", args->quick, "fewer repetitions");
  sub.add_option("--tensor-parallel-size", args->tensor_parallel_size,
                 "ranks of the profiled instance, one GPU each over NCCL; also measures the all-reduce's bus "
                 "bandwidth, and utilisation is against that many cards")
      ->check(CLI::PositiveNumber);
  sub.add_flag("--enable-expert-parallel", args->enable_expert_parallel,
               "MoE models: spread each layer's experts whole over the ranks instead of slicing every expert");
  sub.add_option("--gpus", args->gpus, "the ranks' devices, e.g. 0,1,2,3 (default: the first N visible)")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--decode-context", args->decode_context, "cached tokens per sequence in the decode rows")
      ->check(CLI::Range(16, 1 << 20));
  sub.add_option("--decode-batches", args->decode_batches, "decode batch sizes")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096));
  sub.add_option("--prefill-tokens", args->prefill_tokens, "prefill lengths")
      ->delimiter(',')
      ->check(CLI::Range(1, 1 << 20));
  return [args]() -> int {
    if (!has_nvidia_device()) {
      std::cerr << "baton profile: no GPU: this machine has no NVIDIA device (/dev/nvidia0 is absent); profile "
                   "measures a GPU, so run it on a GPU host. To predict without one, `baton plan --profile` reads "
                   "a profile measured elsewhere (docs/results/pd-vs-agg/profiles/)\n";
      return 1;
    }
#ifdef BATON_HAVE_CUDA
    baton::cuda::ProfileOptions o;
    o.presets = args->models;
    o.json_path = args->json_path;
    o.md_path = args->md_path;
    o.gpu_memory_utilization = args->gpu_memory_utilization;
    o.decode_context = args->decode_context;
    o.decode_batches = args->decode_batches;
    o.prefill_tokens = args->prefill_tokens;
    o.tensor_parallel_size = args->tensor_parallel_size;
    o.enable_expert_parallel = args->enable_expert_parallel;
    o.gpus = args->gpus;
    if (args->quick) {
      o.decode_iters = 5;
      o.prefill_iters = 2;
    }
    auto r = baton::cuda::run_gpu_profile(o);
    if (!r.is_ok()) {
      std::cerr << "baton profile: " << r.status().to_string() << "\n";
      return 1;
    }
    std::cout << "wrote " << o.json_path << " and " << o.md_path << "\n";
    return 0;
#else
    std::cerr << "baton profile: this build has no CUDA backend (configure with a CUDA compiler)\n";
    return 1;
#endif
  };
}

}  // namespace

baton::cli::CommandSpec baton::cli::profile_command() {
  return {"profile", "Measure the GPU's ceilings and the CUDA backend's decode/prefill speed", &setup};
}

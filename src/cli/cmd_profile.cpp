// `baton profile`: the GPU benchmark (tools/gpu_profile/cuda_profile.h): the card's
// ceilings, then decode step and prefill times of model shapes with random
// weights made on the GPU, written as JSON and Markdown. On a machine with
// no NVIDIA device it says "no GPU" before anything else (the CUDA runtime's
// own error there reads "driver version is insufficient").
#include <array>
#include <charconv>
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
  std::vector<int> kernel_cost_batches;
  std::vector<int> prefill_tokens = {512, 2048, 8192, 16384};
  double gpu_memory_utilization = 0.95;
  int tensor_parallel_size = 1;
  bool enable_expert_parallel = false;
  std::vector<int> gpus;
  std::vector<std::string> mixed_steps;  // DECODES:CONTEXT:CHUNK:CHUNK_CONTEXT
};

// A --mixed-steps entry, DECODES:CONTEXT:CHUNK:CHUNK_CONTEXT: DECODES
// sequences at CONTEXT cached tokens beside a prompt's CHUNK tokens after
// CHUNK_CONTEXT of its own. Empty on success, else what is wrong.
std::string parse_mixed_step(const std::string& v, std::array<int, 4>* out) {
  size_t begin = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t end = i < 3 ? v.find(':', begin) : v.size();
    if (end == std::string::npos) return "wants DECODES:CONTEXT:CHUNK:CHUNK_CONTEXT (four counts), got '" + v + "'";
    int x = -1;
    const auto [ptr, ec] = std::from_chars(v.data() + begin, v.data() + end, x);
    if (ec != std::errc() || ptr != v.data() + end || x < 0 || x > (1 << 20))
      return "'" + v.substr(begin, end - begin) + "' in '" + v + "' is not a count in [0, 1048576]";
    (*out)[i] = x;
    begin = end + 1;
  }
  if ((*out)[0] + (*out)[2] < 1) return "'" + v + "' has neither decodes nor a chunk";
  if ((*out)[0] > 0 && (*out)[1] < 1) return "'" + v + "': decodes need a context of at least 1 token";
  return "";
}

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
  sub.add_option("--kernel-costs", args->kernel_cost_batches,
                 "decode batches (of --decode-batches) whose step is also timed kernel by kernel inside its CUDA "
                 "graph: each kernel's launches replaced by an empty wait, the saving is its in-step cost")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096));
  sub.add_option("--prefill-tokens", args->prefill_tokens, "prefill lengths")
      ->delimiter(',')
      ->check(CLI::Range(1, 1 << 20));
  sub.add_option("--mixed-steps", args->mixed_steps,
                 "steps of mixed shape, each DECODES:CONTEXT:CHUNK:CHUNK_CONTEXT (DECODES sequences at CONTEXT "
                 "tokens beside a prompt's CHUNK tokens after CHUNK_CONTEXT), e.g. 32:8192:512:7680; the planner "
                 "fits agg's steps from them")
      ->delimiter(',')
      ->check(CLI::Validator(
          [](std::string& v) {
            std::array<int, 4> f{};
            return parse_mixed_step(v, &f);
          },
          "D:C:N:K"));
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
    o.kernel_cost_batches = args->kernel_cost_batches;
    o.prefill_tokens = args->prefill_tokens;
    o.tensor_parallel_size = args->tensor_parallel_size;
    o.enable_expert_parallel = args->enable_expert_parallel;
    o.gpus = args->gpus;
    for (const std::string& step : args->mixed_steps) {
      std::array<int, 4> f{};
      parse_mixed_step(step, &f);  // checked when parsed
      o.mixed_steps.push_back({f[0], f[1], f[2], f[3]});
    }
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

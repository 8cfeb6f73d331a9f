// baton_gpu_profile: the GPU benchmark as a small standalone binary (the same
// code as `baton profile`), easy to carry to a GPU host.
//   baton_gpu_profile [--json PATH] [--md PATH] [--models a,b] [--quick]
//                     [--decode-context N] [--decode-batches a,b] [--kernel-costs a,b] [--prefill-tokens a,b]
//                     [--mixed-steps B:CTX:N:C,...]  (B decodes at CTX tokens + a chunk of N after C)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tools/gpu_profile/cuda_profile.h"

namespace {
// The parts of v between the separators; skip_empty drops empty ones.
std::vector<std::string> split(const std::string& v, char sep, bool skip_empty) {
  std::vector<std::string> parts;
  size_t p = 0;
  while (p <= v.size()) {
    size_t q = v.find(sep, p);
    if (q == std::string::npos) q = v.size();
    if (q > p || !skip_empty) parts.push_back(v.substr(p, q - p));
    p = q + 1;
  }
  return parts;
}
std::vector<std::string> split_commas(const std::string& v) { return split(v, ',', true); }

// A count in [min, 2^20], or exit 2 naming the part.
int count_at_least(const std::string& part, long min) {
  char* end = nullptr;
  const long x = std::strtol(part.c_str(), &end, 10);
  if (end == part.c_str() || *end != '\0' || x < min || x > 1 << 20) {
    std::fprintf(stderr, "not a count of at least %ld: '%s'\n", min, part.c_str());
    std::exit(2);
  }
  return static_cast<int>(x);
}

std::vector<int> split_ints(const std::string& v) {
  std::vector<int> out;
  for (const std::string& part : split_commas(v)) out.push_back(count_at_least(part, 1));
  if (out.empty()) {
    std::fprintf(stderr, "an empty list: %s\n", v.c_str());
    std::exit(2);
  }
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  baton::cuda::ProfileOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--json") o.json_path = next();
    else if (a == "--md") o.md_path = next();
    else if (a == "--models") {
      o.presets = split_commas(next());
    } else if (a == "--decode-context") {
      o.decode_context = split_ints(next()).at(0);
    } else if (a == "--decode-batches") {
      o.decode_batches = split_ints(next());
    } else if (a == "--prefill-tokens") {
      o.prefill_tokens = split_ints(next());
    } else if (a == "--mixed-steps") {
      for (const std::string& step : split_commas(next())) {
        std::vector<int> f;
        for (const std::string& part : split(step, ':', false)) f.push_back(count_at_least(part, 0));
        if (f.size() != 4 || (f[0] > 0 && f[1] < 1) || f[0] + f[2] < 1) {
          std::fprintf(stderr, "--mixed-steps wants DECODES:CONTEXT:CHUNK:CHUNK_CONTEXT, got %s\n", step.c_str());
          return 2;
        }
        o.mixed_steps.push_back({f[0], f[1], f[2], f[3]});
      }
    } else if (a == "--tensor-parallel-size") {
      o.tensor_parallel_size = split_ints(next()).at(0);
    } else if (a == "--enable-expert-parallel") {
      o.enable_expert_parallel = true;
    } else if (a == "--gpus") {
      o.gpus = split_ints(next());
    } else if (a == "--kernel-costs") {
      o.kernel_cost_batches = split_ints(next());
    } else if (a == "--quick") {
      o.decode_iters = 5;
      o.prefill_iters = 2;
    } else {
      std::fprintf(stderr,
                   "unknown argument %s\nusage: baton_gpu_profile [--json PATH] [--md PATH] [--models a,b] [--quick] "
                   "[--decode-context N] [--decode-batches a,b] [--kernel-costs a,b] [--prefill-tokens a,b] "
                   "[--mixed-steps B:CTX:N:C,...] "
                   "[--tensor-parallel-size N] "
                   "[--enable-expert-parallel] [--gpus a,b]\n",
                   a.c_str());
      return 2;
    }
  }
  auto r = baton::cuda::run_gpu_profile(o);
  if (!r.is_ok()) {
    std::fprintf(stderr, "profile failed: %s\n", r.status().to_string().c_str());
    return 1;
  }
  return 0;
}

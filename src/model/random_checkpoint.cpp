#include "model/random_checkpoint.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "model/fp8_checkpoint.h"
#include "model/weight_names.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

Status copy_tokenizer(const std::string& from, const std::string& to) {
  std::error_code ec;
  if (!fs::is_directory(from, ec)) return not_found("tokenizer folder '{}' does not exist", from);
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    const fs::path src = fs::path(from) / file;
    if (!fs::exists(src, ec)) return not_found("tokenizer folder '{}' has no {}", from, file);
    fs::copy_file(src, fs::path(to) / file, fs::copy_options::overwrite_existing, ec);
    if (ec) return unavailable("cannot copy '{}' to '{}': {}", src.string(), to, ec.message());
  }
  return Status::ok();
}

}  // namespace

void fill_random_normal(uint64_t seed, std::string_view tensor_name, double stddev, DType dtype,
                        std::span<std::byte> out, ThreadPool& pool) {
  const int64_t n = static_cast<int64_t>(out.size() / dtype_size(dtype));
  const int64_t num_pairs = (n + 1) / 2;
  const uint64_t key = splitmix64(seed ^ splitmix64(fnv1a(tensor_name)));
  const float scale = static_cast<float>(stddev);
  std::byte* base = out.data();
  pool.parallel_for(
      num_pairs,
      [&](int64_t begin, int64_t end) {
        constexpr float kTwoPi = 6.28318530717958647692f;
        constexpr float kInv32 = 1.0f / 4294967296.0f;
        for (int64_t p = begin; p < end; ++p) {
          // Box-Muller on two 32-bit uniforms in (0, 1) drawn from one counter.
          const uint64_t r = splitmix64(key + static_cast<uint64_t>(p) * 0xD1B54A32D192ED03ull);
          const float u1 = (static_cast<float>(r >> 40) + 0.5f) * (1.0f / 16777216.0f);
          const float u2 = static_cast<float>(r & 0xffffffffu) * kInv32;
          const float radius = scale * std::sqrt(-2.0f * std::log(u1));
          const float angle = kTwoPi * u2;
          store_float(dtype, base, 2 * p, radius * std::cos(angle));
          if (2 * p + 1 < n) store_float(dtype, base, 2 * p + 1, radius * std::sin(angle));
        }
      },
      /*min_chunk=*/1 << 14);
}

void fill_ones(DType dtype, std::span<std::byte> out) {
  const int64_t n = static_cast<int64_t>(out.size() / dtype_size(dtype));
  for (int64_t i = 0; i < n; ++i) store_float(dtype, out.data(), i, 1.0f);
}

Result<RandomCheckpointStats> write_random_checkpoint(ModelConfig config, const RandomCheckpointOptions& options) {
  if (options.out_dir.empty()) return invalid_argument("no output folder given");
  if (!(options.initializer_range > 0)) return invalid_argument("initializer_range must be > 0");
  config.torch_dtype = options.dtype;
  config.quantization = options.quantization;
  // The config must be one the loader accepts: check it the loader's way.
  auto reparsed = ModelConfig::from_json(config.to_json());
  if (!reparsed.is_ok()) return reparsed.status().with_context("model config");

  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec) return unavailable("cannot create '{}': {}", options.out_dir, ec.message());
  fs::remove(fs::path(options.out_dir) / "config.json", ec);  // written last, when complete
  if (!options.tokenizer_dir.empty()) BATON_RETURN_IF_ERROR(copy_tokenizer(options.tokenizer_dir, options.out_dir));

  const std::vector<WeightSpec> weights = expected_weights(config);
  std::vector<TensorSpec> specs;
  for (const auto& w : weights) specs.push_back({w.name, options.dtype, w.shape});
  const std::vector<TensorSpec> written = options.quantization ? fp8_tensor_specs(specs, *options.quantization, nullptr)
                                                               : specs;
  RandomCheckpointStats stats;
  uint64_t shard_bytes = 0;
  stats.num_files = 1;
  for (const auto& spec : written) {
    const uint64_t bytes = spec.num_bytes();
    if (shard_bytes > 0 && shard_bytes + bytes > options.max_shard_bytes) {  // mirrors the writer's split
      ++stats.num_files;
      shard_bytes = 0;
    }
    shard_bytes += bytes;
    stats.num_bytes += bytes;
  }
  for (const auto& w : weights) stats.num_parameters += static_cast<uint64_t>(w.num_elements());
  ThreadPool pool(options.num_threads);
  if (options.quantization) {
    BATON_RETURN_IF_ERROR(write_fp8_weights(
        options.out_dir, specs, *options.quantization,
        [&](size_t i, std::span<float> out) {
          auto bytes = std::as_writable_bytes(out);
          if (weights[i].init == WeightInit::kOnes) {
            fill_ones(DType::kF32, bytes);
          } else {
            fill_random_normal(options.seed, weights[i].name, options.initializer_range, DType::kF32, bytes, pool);
          }
          return Status::ok();
        },
        options.max_shard_bytes));
  } else {
    BATON_RETURN_IF_ERROR(write_checkpoint_weights(
        options.out_dir, specs,
        [&](size_t i, std::span<std::byte> out) {
          if (weights[i].init == WeightInit::kOnes) {
            fill_ones(options.dtype, out);
          } else {
            fill_random_normal(options.seed, weights[i].name, options.initializer_range, options.dtype, out, pool);
          }
          return Status::ok();
        },
        options.max_shard_bytes));
  }
  // config.json last: a folder with a config is a complete checkpoint.
  BATON_RETURN_IF_ERROR(
      write_file((fs::path(options.out_dir) / "config.json").string(), config.to_json().dump(2) + "\n"));
  return stats;
}

}  // namespace baton

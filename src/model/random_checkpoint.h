// Random-weight checkpoints in the Hugging Face layout (config.json,
// safetensors, tokenizer files), so any shape can be served and benchmarked
// without downloading weights. Weights are normal(0, initializer_range) and
// norms are 1 (as HF initialises); the same seed gives byte-identical files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/thread_pool.h"
#include "model/model_config.h"
#include "model/safetensors_writer.h"

namespace baton {

struct RandomCheckpointOptions {
  std::string out_dir;
  uint64_t seed = 0;
  DType dtype = DType::kBF16;  // stored dtype; also written as torch_dtype
  std::string tokenizer_dir;   // holds tokenizer.json + tokenizer_config.json; empty: none copied
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  int num_threads = 0;  // <= 0: all cores
  double initializer_range = 0.02;
  // Set: the Linear weights are written as FP8 (model/fp8_checkpoint.h),
  // quantised from the same random values a bf16 checkpoint would hold.
  std::optional<Fp8Quantization> quantization;
};

struct RandomCheckpointStats {
  uint64_t num_parameters = 0;
  uint64_t num_bytes = 0;
  int num_files = 0;  // safetensors files written
};

// Writes the checkpoint; streams one tensor at a time (memory stays at the
// largest tensor). Returns what was written.
Result<RandomCheckpointStats> write_random_checkpoint(ModelConfig config, const RandomCheckpointOptions& options);

// Fills `out` (num_elements values of `dtype`) with normal(0, stddev) values
// that depend only on (seed, tensor name, element index): counter-based, so
// the result is the same whatever the thread count.
void fill_random_normal(uint64_t seed, std::string_view tensor_name, double stddev, DType dtype,
                        std::span<std::byte> out, ThreadPool& pool);

// Fills `out` with the value 1 in `dtype`.
void fill_ones(DType dtype, std::span<std::byte> out);

}  // namespace baton

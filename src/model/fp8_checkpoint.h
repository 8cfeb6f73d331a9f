// FP8 checkpoints (model/fp8_quantization.h) on both sides of the disk:
// reading dequantises each F8_E4M3 weight at load, so every backend sees the
// model in its torch_dtype (the CPU reference; the CUDA backend's first path,
// before W8A8 GEMMs); writing quantises a checkpoint's Linear weights, as
// `baton init-model --quantize fp8-block|fp8-tensor` does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/safetensors_writer.h"

namespace baton {

// Checks the FP8 tensors of a checkpoint in folder `dir` against its config
// and replaces each F8_E4M3 weight in `tensors` by its dequantised copy in
// config.torch_dtype (kept alive in `storage`); the scale tensors (and
// static activation schemes' input_scale) are removed. Refused, naming the
// tensor: F8 weights without quantization_config, a missing scale, a scale
// of the wrong shape or dtype, a scale without an F8 weight, an F8 weight in
// modules_to_not_convert / ignored_layers. With `dequantize` false the
// checks alone: the F8 weights and their scales stay as stored (a backend
// that computes in FP8 reads them).
Status dequantize_fp8_checkpoint(const ModelConfig& config, const std::string& dir,
                                 std::map<std::string, TensorView>& tensors,
                                 std::vector<std::vector<std::byte>>& storage, bool dequantize = true);

// The tensors written for `tensors` (each in its own dtype) under `quant`:
// every quantisable Linear weight (is_fp8_quantizable, not in
// modules_not_converted) becomes F8_E4M3 followed by its F32 scale tensor.
// weight_of[k] is the index in `tensors` that output tensor k comes from.
std::vector<TensorSpec> fp8_tensor_specs(const std::vector<TensorSpec>& tensors, const Fp8Quantization& quant,
                                         std::vector<size_t>* weight_of);

// Fills `out` with the values of tensors[index] in fp32.
using FloatSourceFn = std::function<Status(size_t index, std::span<float> out)>;

// Writes `tensors` into `dir` as FP8 weights (fp8_tensor_specs), taking their
// values from `source` (one call per tensor, in order), sharded as
// write_checkpoint_weights does.
Status write_fp8_weights(const std::string& dir, const std::vector<TensorSpec>& tensors, const Fp8Quantization& quant,
                         const FloatSourceFn& source, uint64_t max_shard_bytes);

struct Fp8CheckpointStats {
  int num_quantized = 0;  // Linear weights stored as FP8
  int num_kept = 0;       // tensors kept in their dtype
  uint64_t num_bytes = 0;
};

// Writes the FP8 form of the (unquantised) checkpoint `source` into out_dir:
// its weights, its config.json with quantization_config added, and every
// other file of its folder (tokenizer, generation_config.json, ...).
Result<Fp8CheckpointStats> write_fp8_checkpoint(const Checkpoint& source, const Fp8Quantization& quant,
                                                const std::string& out_dir,
                                                uint64_t max_shard_bytes = kDefaultMaxShardBytes);

}  // namespace baton

// A Hugging Face checkpoint folder: config.json plus safetensors weights (one
// model.safetensors, or shards listed in model.safetensors.index.json), all
// memory-mapped. Tensors stay in their stored dtype; backends convert. FP8
// weights (quantization_config quant_method fp8) are the exception unless
// the opener keeps them: they are dequantised at open into
// config().torch_dtype (model/fp8_checkpoint.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/model_config.h"
#include "model/tensor.h"

namespace baton {

struct CheckpointOpenOptions {
  // false: F8_E4M3 weights stay F8 beside their scale tensors (checked as at
  // a dequantising open), for a backend that computes in FP8 (the CUDA one).
  bool dequantize_fp8 = true;
};

class Checkpoint {
 public:
  virtual ~Checkpoint() = default;

  // Opens DIR: parses config.json, maps every safetensors file and checks
  // each header (offsets inside the file, sizes matching dtype x shape).
  static Result<std::unique_ptr<Checkpoint>> open(const std::string& dir, const CheckpointOpenOptions& options = {});

  virtual const ModelConfig& config() const = 0;
  virtual const std::string& dir() const = 0;
  virtual bool has(const std::string& name) const = 0;
  virtual std::vector<std::string> tensor_names() const = 0;

  // The tensor `name`; kNotFound naming it if absent, kInvalidArgument if its
  // shape differs from `expected_shape` (when given).
  virtual Result<TensorView> tensor(const std::string& name, const std::vector<int64_t>& expected_shape = {}) const = 0;
};

}  // namespace baton

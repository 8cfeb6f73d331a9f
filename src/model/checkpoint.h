// A Hugging Face checkpoint folder: config.json plus safetensors weights (one
// model.safetensors, or shards listed in model.safetensors.index.json), all
// memory-mapped. Tensors stay in their stored dtype; backends convert. FP8
// weights (quantization_config quant_method fp8) are the exception: they are
// dequantised at open into config().torch_dtype (model/fp8_checkpoint.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/model_config.h"
#include "model/tensor.h"

namespace baton {

class Checkpoint {
 public:
  virtual ~Checkpoint() = default;

  // Opens DIR: parses config.json, maps every safetensors file and checks
  // each header (offsets inside the file, sizes matching dtype x shape).
  static Result<std::unique_ptr<Checkpoint>> open(const std::string& dir);

  virtual const ModelConfig& config() const = 0;
  virtual const std::string& dir() const = 0;
  virtual bool has(const std::string& name) const = 0;
  virtual std::vector<std::string> tensor_names() const = 0;

  // The tensor `name`; kNotFound naming it if absent, kInvalidArgument if its
  // shape differs from `expected_shape` (when given).
  virtual Result<TensorView> tensor(const std::string& name, const std::vector<int64_t>& expected_shape = {}) const = 0;
};

}  // namespace baton

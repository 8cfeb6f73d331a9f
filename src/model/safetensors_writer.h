// Writes .safetensors files, streaming one tensor at a time so that a model
// larger than memory can be written, and splits big checkpoints into shards
// with a model.safetensors.index.json, the way Hugging Face does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/tensor.h"

namespace baton {

struct TensorSpec {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;

  int64_t num_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t num_bytes() const { return static_cast<size_t>(num_elements()) * dtype_size(dtype); }
};

// Fills the bytes of tensors[index] (out.size() == its num_bytes()).
using TensorFillFn = std::function<Status(size_t index, std::span<std::byte> out)>;

// Writes one safetensors file holding `tensors` in order; each tensor's bytes
// come from fill(), called once per tensor in order. The file appears under
// `path` only when complete (written to path + ".tmp", then renamed).
Status write_safetensors(const std::string& path, const std::vector<TensorSpec>& tensors, const TensorFillFn& fill);

// Writes in-memory tensors (their views' data) to one file.
Status write_safetensors(const std::string& path, const std::vector<TensorView>& tensors);

// Writes a checkpoint's weights into `dir`: one model.safetensors when the
// total fits in max_shard_bytes, else shards model-0000K-of-0000N.safetensors
// (each at most max_shard_bytes unless a single tensor is bigger) plus
// model.safetensors.index.json. Removes weight files of an earlier layout.
Status write_checkpoint_weights(const std::string& dir, const std::vector<TensorSpec>& tensors,
                                const TensorFillFn& fill, uint64_t max_shard_bytes);

constexpr uint64_t kDefaultMaxShardBytes = 4ull << 30;  // 4 GiB

}  // namespace baton

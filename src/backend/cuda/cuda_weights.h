// A model's weights on the GPU in bf16, in one device allocation, with q/k/v
// and gate/up fused (concatenated rows) so each is one GEMM. Loaded from a
// checkpoint through pinned host staging (any stored dtype, converted on the
// device), or filled with random values on the device (benchmarks).
// FP8 checkpoints (config.quantization): on one GPU, the dense projections of
// the per-head attention models (qkv, o, gate/up, down) stay in e4m3 with
// their scales (fp8_kernels.h Fp8Weight) in a second allocation; every other
// F8 tensor (MoE experts, MLA, a tensor-parallel rank's slices) is
// dequantised on the device into the bf16 arena at load.
// A tensor-parallel rank holds only its slice (model/tp_shard.h): the rows or
// columns of its heads and intermediate slice, and vocab_per_rank rows of the
// embedding and LM head; its embedding has one more row, all zeros, that the
// tokens of other ranks' vocabulary slices read (the all-reduce sums them).
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <string>
#include <vector>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/fp8_kernels.h"
#include "backend/cuda/kernels.h"
#include "common/status.h"
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/tp_shard.h"

namespace baton::cuda {

struct CudaLayerWeights {
  bf16* input_norm = nullptr;  // [hidden]
  bf16* post_norm = nullptr;   // [hidden]
  bf16* qkv = nullptr;         // [q + 2 kv, hidden]
  bf16* qkv_bias = nullptr;    // [q + 2 kv] or null
  bf16* q_norm = nullptr;      // [head_dim] or null
  bf16* k_norm = nullptr;      // [head_dim] or null
  bf16* o_proj = nullptr;      // [hidden, q]
  bf16* o_bias = nullptr;      // [hidden] or null
  bool is_moe = false;
  bf16* gate_up = nullptr;  // dense: [2 inter, hidden]
  bf16* down = nullptr;     // dense: [hidden, inter]
  // FP8 in place of qkv, o_proj, gate_up, down (then those are null).
  Fp8Weight qkv_f8, o_proj_f8, gate_up_f8, down_f8;
  bf16* router = nullptr;          // moe: [experts, hidden]
  bf16* expert_gate_up = nullptr;  // moe: [experts, 2 moe_inter, hidden]
  bf16* expert_down = nullptr;     // moe: [experts, hidden, moe_inter]
  // deepseek_v3 (then qkv, q/k norms and biases are null). qkv_a fuses the q
  // rows (q_a_proj [q_lora_rank], or q_proj [heads * qk_head_dim] without q
  // LoRA) and kv_a_proj_with_mqa [kv_lora_rank + rope].
  bf16* qkv_a = nullptr;           // [q_cols + kv_lora_rank + rope, hidden]
  bf16* q_a_norm = nullptr;        // [q_lora_rank] or null
  bf16* q_b = nullptr;             // [heads * qk_head_dim, q_lora_rank] or null
  bf16* kv_a_norm = nullptr;       // [kv_lora_rank]
  bf16* kv_b = nullptr;            // [heads * (nope + v), kv_lora_rank]: head j's V rows are W_UV[j]
  bf16* uk_t = nullptr;            // [heads, kv_lora_rank, nope]: W_UK[j]^T, made from kv_b
  float* expert_bias = nullptr;    // moe: e_score_correction_bias [experts], fp32
  bf16* shared_gate_up = nullptr;  // moe: [2 * shared_inter, hidden] or null
  bf16* shared_down = nullptr;     // moe: [hidden, shared_inter]
};

class CudaWeights {
 public:
  // Bytes the weights of `config` take on the device (bf16).
  static size_t bytes_for(const ModelConfig& config, bool has_o_bias);

  // Loads `shard`'s part of every tensor the config calls for; a missing or
  // misshapen tensor is an error naming it. `load_gbps` receives the
  // host->device rate reached.
  static Result<CudaWeights> load(const Checkpoint& ckpt, const TpShard& shard, cudaStream_t stream, double* load_gbps);
  // Random weights (uniform, std 0.02; norms 1) made on the device, `shard`'s slice of them.
  static Result<CudaWeights> random(const ModelConfig& config, const TpShard& shard, uint64_t seed,
                                    cudaStream_t stream);

  std::vector<CudaLayerWeights> layers;
  bf16* embed = nullptr;       // [vocab, hidden]; a rank of several: [vocab_per_rank + 1, hidden]
  bf16* final_norm = nullptr;  // [hidden]
  bf16* lm_head = nullptr;     // [vocab, hidden] (= embed when tied); a rank of several: [vocab_per_rank, hidden]
  size_t num_bytes() const { return arena_.bytes() + fp8_arena_.bytes(); }
  // The largest FP8 weight (elements) the FP8 GEMM can only run dequantised
  // (fp8_gemm.h: not in 128x128 blocks, or k not a multiple of 128); 0: none.
  int64_t max_fp8_fallback_elems() const { return max_fp8_fallback_elems_; }
  int64_t max_fp8_elems() const { return max_fp8_elems_; }  // the largest FP8 weight

 private:
  struct Item {
    std::string name;            // checkpoint tensor name
    std::vector<int64_t> shape;  // expected shape (the whole tensor's)
    size_t offset_elems = 0;     // destination in the arena
    bool ones = false;           // random init: a norm weight
    bool f32 = false;            // kept in fp32 (two arena elements each); random init: zeros
    // The slice this rank holds: rows [row_begin, row_begin + rows) and
    // columns [col_begin, col_begin + cols) of the tensor seen as
    // [shape[0], product of the rest]; -1: all of them.
    int64_t row_begin = 0, rows = -1, col_begin = 0, cols = -1;
  };
  // An FP8 Linear kept in e4m3: its parts (checkpoint weight, rows), fused in
  // order, and where its bits and scales go in fp8_arena_ (bytes).
  struct Fp8Item {
    Fp8Weight* dst = nullptr;
    std::vector<std::pair<std::string, int64_t>> parts;
    int64_t k = 0;
    size_t bits_at = 0, scales_at = 0;
    int64_t rows() const;
  };
  // Whether `config`'s dense projections stay FP8 on a rank of `shard`
  // (cuda_weights_fp8.cpp); `checkpoint` (if any) must store them as F8.
  static bool keeps_fp8(const ModelConfig& config, const TpShard& shard, const Checkpoint* checkpoint);
  // Lays out fp8_items_ in fp8_arena_ and sets the layers' Fp8Weights.
  Status plan_fp8(const ModelConfig& config);
  // Fills the FP8 weights from the checkpoint (bits as stored, scales
  // expanded to the device layout), or with random values.
  Status load_fp8(const Checkpoint& ckpt);
  Status random_fp8(uint64_t seed, cudaStream_t stream);
  // The bf16 path's F8 tensors: uploads the scales of weight `name` into
  // fp8_scale_staging_ (the stream must be idle) and returns the dequantiser's
  // arguments with the scale fields set.
  Result<Fp8DequantArgs> stage_fp8_scales(const Checkpoint& ckpt, const std::string& name);
  // Makes the weights that are not checkpoint tensors (MLA's W_UK^T).
  Status derive(const ModelConfig& config, const TpShard& shard, cudaStream_t stream);
  // The MLA attention block's tensors of layer prefix `p` (the shard's heads).
  void plan_mla(const ModelConfig& c, const TpShard& shard, const std::string& p, CudaLayerWeights& L,
                const std::function<size_t(bf16**, int64_t)>& region, std::vector<Item>* items);
  // Lays out the arena (zeroed) for `shard` and sets the pointers; returns
  // the tensors to fill.
  Status plan(const ModelConfig& config, const TpShard& shard, bool has_o_bias, bool fp8, std::vector<Item>* items);

  DeviceBuffer arena_;
  DeviceBuffer fp8_arena_;
  std::vector<Fp8Item> fp8_items_;
  int64_t max_fp8_fallback_elems_ = 0, max_fp8_elems_ = 0;
  DeviceBuffer fp8_scale_staging_;  // the bf16 path's F8 tensors: the current one's scales
};

}  // namespace baton::cuda

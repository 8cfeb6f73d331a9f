// The architecture description read from a Hugging Face config.json.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "model/fp8_quantization.h"
#include "model/tensor.h"

namespace baton {

enum class Arch { kLlama, kQwen2, kQwen3, kQwen3Moe, kDeepseekV3 };

// the HF model_type: llama, qwen2, qwen3, qwen3_moe, deepseek_v3
const char* arch_name(Arch arch);

// rope_scaling of type "llama3" (Llama-3.1+) or "yarn" (DeepSeek-V3). Other
// types are refused at load.
struct RopeScaling {
  std::string rope_type;  // "llama3" or "yarn"
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int original_max_position_embeddings = 8192;
  // yarn (HF's field names and defaults).
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
  double attention_factor = 0.0;  // 0: derived from mscale / mscale_all_dim
  bool truncate = true;
};

// Multi-head latent attention (deepseek_v3). Each token caches one latent
// row per layer, kv_lora_rank + qk_rope_head_dim wide, instead of per-head K
// and V. kv_lora_rank == 0 for every other model.
struct MlaConfig {
  int q_lora_rank = 0;  // 0: q_lora_rank null (one q_proj), else q_a_proj -> norm -> q_b_proj
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
  bool rope_interleave = true;  // rope pairs (2i, 2i + 1), as the checkpoints' weights are laid out

  int qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  int latent_dim() const { return kv_lora_rank + qk_rope_head_dim; }  // cached values per token per layer
};

// DeepSeekMoE routing (deepseek_v3): sigmoid scores plus a per-expert
// correction bias choose the experts, limited to the topk_group best groups.
struct DeepseekMoeConfig {
  int n_shared_experts = 0;
  int n_group = 1;
  int topk_group = 1;
  double routed_scaling_factor = 1.0;
  int first_k_dense_replace = 0;  // layers [0, k) are dense
  int moe_layer_freq = 1;
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;    // num_hidden_layers
  int num_heads = 0;     // num_attention_heads
  int num_kv_heads = 0;  // num_key_value_heads
  int head_dim = 0;      // explicit, else hidden_size / num_heads
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // qwen2 always; llama's attention_bias
  bool qk_norm = false;   // qwen3, qwen3_moe
  DType torch_dtype = DType::kBF16;
  int bos_token_id = -1;
  std::vector<int> eos_token_ids;

  // Mixture of experts (qwen3_moe); num_experts == 0 for dense models.
  // (deepseek_v3: n_routed_experts; head_dim is qk_rope_head_dim, as in HF.)
  int num_experts = 0;
  int num_experts_per_tok = 0;
  int moe_intermediate_size = 0;
  bool norm_topk_prob = false;
  int decoder_sparse_step = 1;
  std::vector<int> mlp_only_layers;

  MlaConfig mla;                   // deepseek_v3 only
  DeepseekMoeConfig deepseek_moe;  // deepseek_v3 only

  // quantization_config of an FP8 checkpoint; torch_dtype stays the dtype
  // of what is not quantised (and of the dequantised weights).
  std::optional<Fp8Quantization> quantization;

  bool is_mla() const { return mla.kv_lora_rank > 0; }
  bool is_moe() const { return num_experts > 0; }
  // Whether layer `layer` uses the sparse MoE block (HF's rule).
  bool is_moe_layer(int layer) const;
  int q_size() const { return num_heads * head_dim; }
  int kv_size() const { return num_kv_heads * head_dim; }

  // Parses config.json; unknown model_type or bad fields are clear errors.
  static Result<ModelConfig> from_json(const Json& j);
  static Result<ModelConfig> from_file(const std::string& path);
  Json to_json() const;  // the HF config.json form
};

}  // namespace baton

// The architecture description read from a Hugging Face config.json.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "model/tensor.h"

namespace baton {

enum class Arch { kLlama, kQwen2, kQwen3, kQwen3Moe };

const char* arch_name(Arch arch);  // the HF model_type: llama, qwen2, qwen3, qwen3_moe

// rope_scaling of type "llama3" (Llama-3.1+). Other types are refused at load.
struct RopeScaling {
  std::string rope_type;  // "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;          // num_hidden_layers
  int num_heads = 0;           // num_attention_heads
  int num_kv_heads = 0;        // num_key_value_heads
  int head_dim = 0;            // explicit, else hidden_size / num_heads
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
  int num_experts = 0;
  int num_experts_per_tok = 0;
  int moe_intermediate_size = 0;
  bool norm_topk_prob = false;
  int decoder_sparse_step = 1;
  std::vector<int> mlp_only_layers;

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

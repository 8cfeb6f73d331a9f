#include "tools/gpu_profile/model_counts.h"

#include <cmath>

namespace baton::cuda {
namespace {

// Parameters of one layer's attention block (projections only).
double attention_params(const ModelConfig& c) {
  const double h = c.hidden_size;
  if (!c.is_mla()) return (c.q_size() + 2.0 * c.kv_size()) * h + h * c.q_size();
  const MlaConfig& m = c.mla;
  const double nh = c.num_heads, q_cols = m.q_lora_rank > 0 ? m.q_lora_rank : nh * m.qk_head_dim();
  double p = (q_cols + m.latent_dim()) * h + nh * (m.qk_nope_head_dim + m.v_head_dim) * double(m.kv_lora_rank) +
             h * nh * m.v_head_dim;
  if (m.q_lora_rank > 0) p += nh * m.qk_head_dim() * q_cols;
  return p;
}

double expert_params(const ModelConfig& c) { return 3.0 * c.hidden_size * c.moe_intermediate_size; }

double shared_expert_params(const ModelConfig& c) {
  return c.arch == Arch::kDeepseekV3 ? expert_params(c) * c.deepseek_moe.n_shared_experts : 0.0;
}

}  // namespace

double kv_bytes_per_token(const ModelConfig& c) {
  const double per_layer = c.is_mla() ? c.mla.latent_dim() : 2.0 * c.kv_size();
  return per_layer * c.num_layers * 2;
}

double expected_experts(const ModelConfig& c, double tokens) {
  if (!c.is_moe()) return 1.0;
  const double e = c.num_experts, k = c.num_experts_per_tok;
  return e * (1.0 - std::pow(1.0 - k / e, tokens));
}

double weight_bytes_read(const ModelConfig& c, double tokens) {
  // An FP8 model's dense projections stay e4m3 on one GPU (1 byte; the scales,
  // 4 bytes per 128x128 block, are left out); experts, MLA and the LM head are bf16.
  const double dense_bytes = c.quantization && !c.is_mla() ? 1.0 : 2.0;
  double bytes = 2.0 * double(c.vocab_size) * c.hidden_size;  // LM head
  for (int i = 0; i < c.num_layers; ++i) {
    bytes += dense_bytes * attention_params(c);
    if (c.is_moe_layer(i))
      bytes += 2.0 * (double(c.num_experts) * c.hidden_size + shared_expert_params(c) +
                      expert_params(c) * expected_experts(c, tokens));
    else bytes += dense_bytes * 3.0 * c.hidden_size * c.intermediate_size;
  }
  return bytes;
}

double linear_flops(const ModelConfig& c, double tokens, double samples) {
  double per_token = 0.0;
  for (int i = 0; i < c.num_layers; ++i) {
    per_token += attention_params(c);
    if (c.is_moe_layer(i))
      per_token += double(c.num_experts) * c.hidden_size + shared_expert_params(c) +
                   expert_params(c) * c.num_experts_per_tok;
    else per_token += 3.0 * c.hidden_size * c.intermediate_size;
  }
  return 2.0 * tokens * per_token + 2.0 * samples * double(c.vocab_size) * c.hidden_size;
}

double attention_flops(const ModelConfig& c, double keys_total) {
  if (c.is_mla()) return 2.0 * c.num_heads * double(c.mla.qk_head_dim() + c.mla.v_head_dim) * keys_total * c.num_layers;
  return 4.0 * c.num_heads * c.head_dim * keys_total * c.num_layers;
}

double attention_flops_executed(const ModelConfig& c, double keys_total) {
  if (!c.is_mla()) return attention_flops(c, keys_total);
  return 2.0 * c.num_heads * double(c.mla.latent_dim() + c.mla.kv_lora_rank) * keys_total * c.num_layers;
}

}  // namespace baton::cuda

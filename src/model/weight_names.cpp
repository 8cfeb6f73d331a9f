#include "model/weight_names.h"

#include <fmt/format.h>

#include "model/checkpoint.h"

namespace baton {

std::string layer_weight_name(int layer, const std::string& suffix) {
  return fmt::format("model.layers.{}.{}", layer, suffix);
}

std::string expert_weight_name(int layer, int expert, const std::string& proj) {
  return fmt::format("model.layers.{}.mlp.experts.{}.{}.weight", layer, expert, proj);
}

namespace {

// Multi-head latent attention (deepseek_v3): the query (one projection, or a
// LoRA pair around a norm), the joint latent + rope projection, its norm, and
// the per-head up-projection of the latent to K-nope and V.
void add_mla_weights(const ModelConfig& c, int l, std::vector<WeightSpec>& w) {
  auto name = [l](const char* suffix) { return layer_weight_name(l, suffix); };
  const MlaConfig& m = c.mla;
  const int64_t hidden = c.hidden_size, nh = c.num_heads;
  if (m.q_lora_rank > 0) {
    w.push_back({name("self_attn.q_a_proj.weight"), {m.q_lora_rank, hidden}});
    w.push_back({name("self_attn.q_a_layernorm.weight"), {m.q_lora_rank}, WeightInit::kOnes});
    w.push_back({name("self_attn.q_b_proj.weight"), {nh * m.qk_head_dim(), m.q_lora_rank}});
  } else {
    w.push_back({name("self_attn.q_proj.weight"), {nh * m.qk_head_dim(), hidden}});
  }
  w.push_back({name("self_attn.kv_a_proj_with_mqa.weight"), {m.latent_dim(), hidden}});
  w.push_back({name("self_attn.kv_a_layernorm.weight"), {m.kv_lora_rank}, WeightInit::kOnes});
  w.push_back({name("self_attn.kv_b_proj.weight"), {nh * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank}});
  w.push_back({name("self_attn.o_proj.weight"), {hidden, nh * m.v_head_dim}});
}

void add_mlp_weights(int l, const std::string& prefix, int64_t inter, int64_t hidden, std::vector<WeightSpec>& w) {
  w.push_back({layer_weight_name(l, prefix + "gate_proj.weight"), {inter, hidden}});
  w.push_back({layer_weight_name(l, prefix + "up_proj.weight"), {inter, hidden}});
  w.push_back({layer_weight_name(l, prefix + "down_proj.weight"), {hidden, inter}});
}

}  // namespace

std::vector<WeightSpec> expected_weights(const ModelConfig& c) {
  const int64_t hidden = c.hidden_size;
  const int64_t q = c.q_size();
  const int64_t kv = c.kv_size();
  std::vector<WeightSpec> w;
  w.push_back({"model.embed_tokens.weight", {c.vocab_size, hidden}});  // [vocab, hidden]
  for (int l = 0; l < c.num_layers; ++l) {
    auto name = [l](const char* suffix) { return layer_weight_name(l, suffix); };
    w.push_back({name("input_layernorm.weight"), {hidden}, WeightInit::kOnes});
    if (c.is_mla()) {
      add_mla_weights(c, l, w);
      w.push_back({name("post_attention_layernorm.weight"), {hidden}, WeightInit::kOnes});
      if (!c.is_moe_layer(l)) {
        add_mlp_weights(l, "mlp.", c.intermediate_size, hidden, w);
        continue;
      }
      const int64_t inter = c.moe_intermediate_size;
      w.push_back({name("mlp.gate.weight"), {c.num_experts, hidden}});
      w.push_back({name("mlp.gate.e_score_correction_bias"), {c.num_experts}});
      for (int e = 0; e < c.num_experts; ++e) add_mlp_weights(l, fmt::format("mlp.experts.{}.", e), inter, hidden, w);
      if (c.deepseek_moe.n_shared_experts > 0)
        add_mlp_weights(l, "mlp.shared_experts.", inter * c.deepseek_moe.n_shared_experts, hidden, w);
      continue;
    }
    w.push_back({name("self_attn.q_proj.weight"), {q, hidden}});
    if (c.qkv_bias) w.push_back({name("self_attn.q_proj.bias"), {q}});
    w.push_back({name("self_attn.k_proj.weight"), {kv, hidden}});
    if (c.qkv_bias) w.push_back({name("self_attn.k_proj.bias"), {kv}});
    w.push_back({name("self_attn.v_proj.weight"), {kv, hidden}});
    if (c.qkv_bias) w.push_back({name("self_attn.v_proj.bias"), {kv}});
    w.push_back({name("self_attn.o_proj.weight"), {hidden, q}});
    if (c.qk_norm) {
      w.push_back({name("self_attn.q_norm.weight"), {c.head_dim}, WeightInit::kOnes});
      w.push_back({name("self_attn.k_norm.weight"), {c.head_dim}, WeightInit::kOnes});
    }
    w.push_back({name("post_attention_layernorm.weight"), {hidden}, WeightInit::kOnes});
    if (c.is_moe_layer(l)) {
      const int64_t inter = c.moe_intermediate_size;
      w.push_back({name("mlp.gate.weight"), {c.num_experts, hidden}});  // router
      for (int e = 0; e < c.num_experts; ++e) {
        w.push_back({expert_weight_name(l, e, "gate_proj"), {inter, hidden}});
        w.push_back({expert_weight_name(l, e, "up_proj"), {inter, hidden}});
        w.push_back({expert_weight_name(l, e, "down_proj"), {hidden, inter}});
      }
    } else {
      const int64_t inter = c.intermediate_size;
      w.push_back({name("mlp.gate_proj.weight"), {inter, hidden}});
      w.push_back({name("mlp.up_proj.weight"), {inter, hidden}});
      w.push_back({name("mlp.down_proj.weight"), {hidden, inter}});
    }
  }
  w.push_back({"model.norm.weight", {hidden}, WeightInit::kOnes});
  if (!c.tie_word_embeddings) w.push_back({"lm_head.weight", {c.vocab_size, hidden}});
  return w;
}

Status validate_weights(const Checkpoint& checkpoint) {
  for (const auto& spec : expected_weights(checkpoint.config())) {
    auto t = checkpoint.tensor(spec.name, spec.shape);
    if (!t.is_ok()) return t.status();
  }
  return Status::ok();
}

}  // namespace baton

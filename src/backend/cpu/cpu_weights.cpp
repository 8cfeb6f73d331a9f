#include "backend/cpu/cpu_weights.h"

#include <fmt/format.h>

#include "common/thread_pool.h"

namespace baton {
namespace {

// Converts `name` (checked against `shape`) into dst, in parallel chunks.
Status load_into(const Checkpoint& ckpt, const std::string& name, const std::vector<int64_t>& shape,
                 float* dst, ThreadPool* pool) {
  BATON_ASSIGN_OR_RETURN(TensorView t, ckpt.tensor(name, shape));
  const int64_t n = t.num_elements();
  const size_t elem = dtype_size(t.dtype);
  auto body = [&](int64_t begin, int64_t end) {
    TensorView part;
    part.dtype = t.dtype;
    part.shape = {end - begin};
    part.data = static_cast<const char*>(t.data) + static_cast<size_t>(begin) * elem;
    part.to_float(dst + begin);
  };
  if (pool != nullptr) pool->parallel_for(n, body, 1 << 16);
  else body(0, n);
  return Status::ok();
}

Result<std::vector<float>> load_tensor(const Checkpoint& ckpt, const std::string& name,
                                const std::vector<int64_t>& shape, ThreadPool* pool) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  BATON_RETURN_IF_ERROR(load_into(ckpt, name, shape, v.data(), pool));
  return v;
}

// Loads `names` (each [rows_i, in]) stacked row-wise, then packs them.
Result<PackedWeight> load_packed(const Checkpoint& ckpt, const std::vector<std::string>& names,
                                 const std::vector<int64_t>& rows, int64_t in, ThreadPool* pool) {
  int64_t total = 0;
  for (int64_t r : rows) total += r;
  std::vector<float> w(static_cast<size_t>(total * in));  // [total, in]
  int64_t at = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    BATON_RETURN_IF_ERROR(load_into(ckpt, names[i], {rows[i], in}, w.data() + at * in, pool));
    at += rows[i];
  }
  return pack_weight(w.data(), total, in, pool);
}

Status load_layer(const Checkpoint& ckpt, const ModelConfig& c, int i, ThreadPool* pool,
                  CpuLayerWeights& L) {
  const std::string p = fmt::format("model.layers.{}.", i);
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size();
  BATON_ASSIGN_OR_RETURN(L.input_norm, load_tensor(ckpt, p + "input_layernorm.weight", {h}, pool));
  BATON_ASSIGN_OR_RETURN(L.post_norm, load_tensor(ckpt, p + "post_attention_layernorm.weight", {h}, pool));

  BATON_ASSIGN_OR_RETURN(L.qkv, load_packed(ckpt,
                                            {p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                                             p + "self_attn.v_proj.weight"},
                                            {q, kv, kv}, h, pool));
  if (c.qkv_bias) {
    L.qkv_bias.resize(static_cast<size_t>(q + 2 * kv));
    BATON_RETURN_IF_ERROR(load_into(ckpt, p + "self_attn.q_proj.bias", {q}, L.qkv_bias.data(), pool));
    BATON_RETURN_IF_ERROR(load_into(ckpt, p + "self_attn.k_proj.bias", {kv}, L.qkv_bias.data() + q, pool));
    BATON_RETURN_IF_ERROR(
        load_into(ckpt, p + "self_attn.v_proj.bias", {kv}, L.qkv_bias.data() + q + kv, pool));
  }
  if (c.qk_norm) {
    BATON_ASSIGN_OR_RETURN(L.q_norm, load_tensor(ckpt, p + "self_attn.q_norm.weight", {c.head_dim}, pool));
    BATON_ASSIGN_OR_RETURN(L.k_norm, load_tensor(ckpt, p + "self_attn.k_norm.weight", {c.head_dim}, pool));
  }
  BATON_ASSIGN_OR_RETURN(L.o_proj, load_packed(ckpt, {p + "self_attn.o_proj.weight"}, {h}, q, pool));
  // Llama's attention_bias also biases o_proj; Qwen2's q/k/v bias does not.
  if (ckpt.has(p + "self_attn.o_proj.bias")) {
    BATON_ASSIGN_OR_RETURN(L.o_bias, load_tensor(ckpt, p + "self_attn.o_proj.bias", {h}, pool));
  }

  L.is_moe = c.is_moe_layer(i);
  if (!L.is_moe) {
    const int64_t inter = c.intermediate_size;
    BATON_ASSIGN_OR_RETURN(
        L.gate_up, load_packed(ckpt, {p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}, {inter, inter}, h, pool));
    BATON_ASSIGN_OR_RETURN(L.down, load_packed(ckpt, {p + "mlp.down_proj.weight"}, {h}, inter, pool));
    return Status::ok();
  }
  const int64_t ne = c.num_experts, mi = c.moe_intermediate_size;
  BATON_ASSIGN_OR_RETURN(L.router, load_packed(ckpt, {p + "mlp.gate.weight"}, {ne}, h, pool));
  L.expert_gate_up.resize(ne);
  L.expert_down.resize(ne);
  for (int64_t e = 0; e < ne; ++e) {
    const std::string ep = fmt::format("{}mlp.experts.{}.", p, e);
    BATON_ASSIGN_OR_RETURN(L.expert_gate_up[e],
                           load_packed(ckpt, {ep + "gate_proj.weight", ep + "up_proj.weight"}, {mi, mi}, h, pool));
    BATON_ASSIGN_OR_RETURN(L.expert_down[e], load_packed(ckpt, {ep + "down_proj.weight"}, {h}, mi, pool));
  }
  return Status::ok();
}

size_t bytes_of(const std::vector<float>& v) { return v.size() * sizeof(float); }
size_t bytes_of(const PackedWeight& w) { return bytes_of(w.data); }
size_t bytes_of(const std::vector<PackedWeight>& ws) {
  size_t n = 0;
  for (const PackedWeight& w : ws) n += bytes_of(w);
  return n;
}

}  // namespace

size_t CpuWeights::num_bytes() const {
  size_t n = bytes_of(embed) + bytes_of(final_norm) + bytes_of(lm_head);
  for (const auto& L : layers) {
    n += bytes_of(L.input_norm) + bytes_of(L.qkv) + bytes_of(L.qkv_bias) + bytes_of(L.q_norm) +
         bytes_of(L.k_norm) + bytes_of(L.o_proj) + bytes_of(L.o_bias) + bytes_of(L.post_norm) +
         bytes_of(L.gate_up) + bytes_of(L.down) + bytes_of(L.router) + bytes_of(L.expert_gate_up) +
         bytes_of(L.expert_down);
  }
  return n;
}

Result<CpuWeights> CpuWeights::load(const Checkpoint& ckpt, ThreadPool* pool) {
  const ModelConfig& c = ckpt.config();
  if (c.hidden_size <= 0 || c.num_layers <= 0 || c.vocab_size <= 0 || c.num_heads <= 0 ||
      c.num_kv_heads <= 0 || c.head_dim <= 0 || c.head_dim % 2 != 0 || c.num_heads % c.num_kv_heads != 0)
    return invalid_argument(
        "model config is not runnable: hidden_size {}, num_hidden_layers {}, vocab_size {}, heads {}/{}, "
        "head_dim {}",
        c.hidden_size, c.num_layers, c.vocab_size, c.num_heads, c.num_kv_heads, c.head_dim);
  if (c.is_moe() && (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.num_experts ||
                     c.moe_intermediate_size <= 0))
    return invalid_argument("MoE config is not runnable: num_experts {}, num_experts_per_tok {}, "
                            "moe_intermediate_size {}",
                            c.num_experts, c.num_experts_per_tok, c.moe_intermediate_size);
  const int64_t h = c.hidden_size, vocab = c.vocab_size;
  CpuWeights w;

  BATON_ASSIGN_OR_RETURN(w.final_norm, load_tensor(ckpt, "model.norm.weight", {h}, pool));
  if (c.tie_word_embeddings) {
    BATON_ASSIGN_OR_RETURN(w.lm_head, load_packed(ckpt, {"model.embed_tokens.weight"}, {vocab}, h, pool));
  } else {
    BATON_ASSIGN_OR_RETURN(w.embed, load_tensor(ckpt, "model.embed_tokens.weight", {vocab, h}, pool));
    BATON_ASSIGN_OR_RETURN(w.lm_head, load_packed(ckpt, {"lm_head.weight"}, {vocab}, h, pool));
  }
  w.layers.resize(c.num_layers);
  for (int i = 0; i < c.num_layers; ++i)
    BATON_RETURN_IF_ERROR(load_layer(ckpt, c, i, pool, w.layers[i]));
  return w;
}

}  // namespace baton

#include "backend/cpu/cpu_weights.h"

#include <fmt/format.h>

#include "common/thread_pool.h"

namespace baton {
namespace {

// Converts `name` (checked against `shape`) into dst, in parallel chunks.
Status load_into(const Checkpoint& ckpt, const std::string& name, const std::vector<int64_t>& shape, float* dst,
                 ThreadPool* pool) {
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

// The layer's MLP: dense, or the sparse MoE block (with DeepSeekMoE's
// correction bias and shared experts when the config has them).
Status load_mlp(const Checkpoint& ckpt, const ModelConfig& c, int i, const std::string& p, ThreadPool* pool,
                CpuLayerWeights& L) {
  const int64_t h = c.hidden_size;
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
  if (c.arch != Arch::kDeepseekV3) return Status::ok();
  BATON_ASSIGN_OR_RETURN(L.expert_bias, load_tensor(ckpt, p + "mlp.gate.e_score_correction_bias", {ne}, pool));
  if (c.deepseek_moe.n_shared_experts > 0) {
    const int64_t si = mi * c.deepseek_moe.n_shared_experts;
    const std::string sp = p + "mlp.shared_experts.";
    BATON_ASSIGN_OR_RETURN(L.shared_gate_up,
                           load_packed(ckpt, {sp + "gate_proj.weight", sp + "up_proj.weight"}, {si, si}, h, pool));
    BATON_ASSIGN_OR_RETURN(L.shared_down, load_packed(ckpt, {sp + "down_proj.weight"}, {h}, si, pool));
  }
  return Status::ok();
}

Status load_mla(const Checkpoint& ckpt, const ModelConfig& c, const std::string& p, ThreadPool* pool,
                CpuLayerWeights& L) {
  const MlaConfig& m = c.mla;
  const int64_t h = c.hidden_size, nh = c.num_heads, nope = m.qk_nope_head_dim, vd = m.v_head_dim;
  const int64_t rank = m.kv_lora_rank;
  CpuMlaWeights& w = L.mla;
  const std::string kv_a = p + "self_attn.kv_a_proj_with_mqa.weight";
  if (m.q_lora_rank > 0) {
    BATON_ASSIGN_OR_RETURN(
        w.qkv_a, load_packed(ckpt, {p + "self_attn.q_a_proj.weight", kv_a}, {m.q_lora_rank, m.latent_dim()}, h, pool));
    BATON_ASSIGN_OR_RETURN(w.q_a_norm, load_tensor(ckpt, p + "self_attn.q_a_layernorm.weight", {m.q_lora_rank}, pool));
    BATON_ASSIGN_OR_RETURN(
        w.q_b, load_packed(ckpt, {p + "self_attn.q_b_proj.weight"}, {nh * m.qk_head_dim()}, m.q_lora_rank, pool));
  } else {
    BATON_ASSIGN_OR_RETURN(w.qkv_a, load_packed(ckpt, {p + "self_attn.q_proj.weight", kv_a},
                                                {nh * m.qk_head_dim(), m.latent_dim()}, h, pool));
  }
  BATON_ASSIGN_OR_RETURN(w.kv_a_norm, load_tensor(ckpt, p + "self_attn.kv_a_layernorm.weight", {rank}, pool));
  // kv_b_proj: [heads * (nope + v), rank]; head j's rows are its K-nope rows then its V rows.
  BATON_ASSIGN_OR_RETURN(std::vector<float> kv_b,
                         load_tensor(ckpt, p + "self_attn.kv_b_proj.weight", {nh * (nope + vd), rank}, pool));
  w.uk_t.resize(nh);
  w.uv.resize(nh);
  std::vector<float> uk_t(rank * nope);  // [rank, nope]
  for (int64_t j = 0; j < nh; ++j) {
    const float* head = kv_b.data() + j * (nope + vd) * rank;  // [nope + v, rank]
    for (int64_t d = 0; d < nope; ++d)
      for (int64_t r = 0; r < rank; ++r) uk_t[r * nope + d] = head[d * rank + r];
    w.uk_t[j] = pack_weight(uk_t.data(), rank, nope);
    w.uv[j] = pack_weight(head + nope * rank, vd, rank);
  }
  BATON_ASSIGN_OR_RETURN(L.o_proj, load_packed(ckpt, {p + "self_attn.o_proj.weight"}, {h}, nh * vd, pool));
  return Status::ok();
}

Status load_layer(const Checkpoint& ckpt, const ModelConfig& c, int i, ThreadPool* pool, CpuLayerWeights& L) {
  const std::string p = fmt::format("model.layers.{}.", i);
  const int64_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size();
  BATON_ASSIGN_OR_RETURN(L.input_norm, load_tensor(ckpt, p + "input_layernorm.weight", {h}, pool));
  BATON_ASSIGN_OR_RETURN(L.post_norm, load_tensor(ckpt, p + "post_attention_layernorm.weight", {h}, pool));
  if (c.is_mla()) {
    BATON_RETURN_IF_ERROR(load_mla(ckpt, c, p, pool, L));
    return load_mlp(ckpt, c, i, p, pool, L);
  }

  BATON_ASSIGN_OR_RETURN(
      L.qkv,
      load_packed(ckpt, {p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"},
                  {q, kv, kv}, h, pool));
  if (c.qkv_bias) {
    L.qkv_bias.resize(static_cast<size_t>(q + 2 * kv));
    BATON_RETURN_IF_ERROR(load_into(ckpt, p + "self_attn.q_proj.bias", {q}, L.qkv_bias.data(), pool));
    BATON_RETURN_IF_ERROR(load_into(ckpt, p + "self_attn.k_proj.bias", {kv}, L.qkv_bias.data() + q, pool));
    BATON_RETURN_IF_ERROR(load_into(ckpt, p + "self_attn.v_proj.bias", {kv}, L.qkv_bias.data() + q + kv, pool));
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

  return load_mlp(ckpt, c, i, p, pool, L);
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
    n += bytes_of(L.input_norm) + bytes_of(L.qkv) + bytes_of(L.qkv_bias) + bytes_of(L.q_norm) + bytes_of(L.k_norm) +
         bytes_of(L.o_proj) + bytes_of(L.o_bias) + bytes_of(L.post_norm) + bytes_of(L.gate_up) + bytes_of(L.down) +
         bytes_of(L.router) + bytes_of(L.expert_gate_up) + bytes_of(L.expert_down) + bytes_of(L.expert_bias) +
         bytes_of(L.shared_gate_up) + bytes_of(L.shared_down) + bytes_of(L.mla.qkv_a) + bytes_of(L.mla.q_a_norm) +
         bytes_of(L.mla.q_b) + bytes_of(L.mla.kv_a_norm) + bytes_of(L.mla.uk_t) + bytes_of(L.mla.uv);
  }
  return n;
}

Result<CpuWeights> CpuWeights::load(const Checkpoint& ckpt, ThreadPool* pool) {
  const ModelConfig& c = ckpt.config();
  if (c.hidden_size <= 0 || c.num_layers <= 0 || c.vocab_size <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 ||
      c.head_dim <= 0 || c.head_dim % 2 != 0 || c.num_heads % c.num_kv_heads != 0)
    return invalid_argument(
        "model config is not runnable: hidden_size {}, num_hidden_layers {}, vocab_size {}, heads {}/{}, "
        "head_dim {}",
        c.hidden_size, c.num_layers, c.vocab_size, c.num_heads, c.num_kv_heads, c.head_dim);
  if (c.is_moe() &&
      (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.num_experts || c.moe_intermediate_size <= 0))
    return invalid_argument(
        "MoE config is not runnable: num_experts {}, num_experts_per_tok {}, "
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
  for (int i = 0; i < c.num_layers; ++i) BATON_RETURN_IF_ERROR(load_layer(ckpt, c, i, pool, w.layers[i]));
  return w;
}

}  // namespace baton

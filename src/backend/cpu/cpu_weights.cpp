#include "backend/cpu/cpu_weights.h"

#include <fmt/format.h>

#include "common/thread_pool.h"

namespace baton {
namespace {

// A tensor of the checkpoint, or the block of it this rank holds: rows
// [row_begin, row_begin + row_count) and, of a 2-D tensor, columns
// [col_begin, col_begin + col_count) (-1: all).
struct Slice {
  std::string name;
  std::vector<int64_t> shape;  // the tensor's full shape (1-D or 2-D)
  int64_t row_begin = 0;
  int64_t row_count = -1;
  int64_t col_begin = 0;
  int64_t col_count = -1;

  int64_t cols() const { return shape.size() > 1 ? shape[1] : 1; }
  int64_t num_rows() const { return row_count < 0 ? shape[0] : row_count; }
  int64_t num_cols() const { return col_count < 0 ? cols() : col_count; }
};

Slice whole(std::string name, std::vector<int64_t> shape) { return Slice{std::move(name), std::move(shape)}; }
Slice row_slice(std::string name, std::vector<int64_t> shape, int64_t begin, int64_t count) {
  return Slice{std::move(name), std::move(shape), begin, count};
}
Slice col_slice(std::string name, std::vector<int64_t> shape, int64_t begin, int64_t count) {
  return Slice{std::move(name), std::move(shape), 0, -1, begin, count};
}

// Converts `count` elements of t from element `first` into dst, in parallel chunks.
void convert_range(const TensorView& t, int64_t first, int64_t count, float* dst, ThreadPool* pool) {
  const size_t elem = dtype_size(t.dtype);
  auto body = [&](int64_t begin, int64_t end) {
    TensorView part;
    part.dtype = t.dtype;
    part.shape = {end - begin};
    part.data = static_cast<const char*>(t.data) + static_cast<size_t>(first + begin) * elem;
    part.to_float(dst + begin);
  };
  if (pool != nullptr) pool->parallel_for(count, body, 1 << 16);
  else body(0, count);
}

// Converts the block `s` (checked against its full shape) into dst, [num_rows, num_cols].
Status load_into(const Checkpoint& ckpt, const Slice& s, float* dst, ThreadPool* pool) {
  BATON_ASSIGN_OR_RETURN(TensorView t, ckpt.tensor(s.name, s.shape));
  const int64_t cols = s.cols(), rows = s.num_rows(), width = s.num_cols();
  if (s.row_begin < 0 || s.row_begin + rows > s.shape[0] || s.col_begin < 0 || s.col_begin + width > cols)
    return internal_error("{}: slice rows [{}, +{}) cols [{}, +{}) is outside its shape", s.name, s.row_begin, rows,
                          s.col_begin, width);
  if (width == cols) {
    convert_range(t, s.row_begin * cols, rows * cols, dst, pool);
    return Status::ok();
  }
  for (int64_t r = 0; r < rows; ++r)
    convert_range(t, (s.row_begin + r) * cols + s.col_begin, width, dst + r * width, nullptr);
  return Status::ok();
}

Result<std::vector<float>> load_tensor(const Checkpoint& ckpt, const Slice& s, ThreadPool* pool) {
  std::vector<float> v(static_cast<size_t>(s.num_rows() * s.num_cols()));
  BATON_RETURN_IF_ERROR(load_into(ckpt, s, v.data(), pool));
  return v;
}

// Loads `parts` (blocks of equal width) stacked row-wise, then packs them.
Result<PackedWeight> load_packed(const Checkpoint& ckpt, const std::vector<Slice>& parts, ThreadPool* pool) {
  const int64_t in = parts.front().num_cols();
  int64_t total = 0;
  for (const Slice& p : parts) {
    if (p.num_cols() != in) return internal_error("{}: {} columns where {} were expected", p.name, p.num_cols(), in);
    total += p.num_rows();
  }
  std::vector<float> w(static_cast<size_t>(total * in));  // [total, in]
  int64_t at = 0;
  for (const Slice& p : parts) {
    BATON_RETURN_IF_ERROR(load_into(ckpt, p, w.data() + at * in, pool));
    at += p.num_rows();
  }
  return pack_weight(w.data(), total, in, pool);
}

// A column-parallel gate/up pair ([inter, h] each, this rank's `count` rows
// from `begin`) and its row-parallel down ([h, inter], the same columns).
Status load_gated_mlp(const Checkpoint& ckpt, const std::string& prefix, int64_t h, int64_t inter, int64_t begin,
                      int64_t count, ThreadPool* pool, PackedWeight& gate_up, PackedWeight& down) {
  BATON_ASSIGN_OR_RETURN(gate_up, load_packed(ckpt,
                                              {row_slice(prefix + "gate_proj.weight", {inter, h}, begin, count),
                                               row_slice(prefix + "up_proj.weight", {inter, h}, begin, count)},
                                              pool));
  BATON_ASSIGN_OR_RETURN(down,
                         load_packed(ckpt, {col_slice(prefix + "down_proj.weight", {h, inter}, begin, count)}, pool));
  return Status::ok();
}

// The layer's MLP: dense, or the sparse MoE block (with DeepSeekMoE's
// correction bias and shared experts when the config has them); each
// intermediate dimension split by the shard, or (expert parallel) only the
// shard's routed experts, whole.
Status load_mlp(const Checkpoint& ckpt, const ModelConfig& c, const TpShard& s, int i, const std::string& p,
                ThreadPool* pool, CpuLayerWeights& L) {
  const int64_t h = c.hidden_size;
  L.is_moe = c.is_moe_layer(i);
  if (!L.is_moe)
    return load_gated_mlp(ckpt, p + "mlp.", h, c.intermediate_size, s.intermediate_begin, s.intermediate_size, pool,
                          L.gate_up, L.down);
  const int64_t ne = c.num_experts, mi = c.moe_intermediate_size;
  BATON_ASSIGN_OR_RETURN(L.router, load_packed(ckpt, {whole(p + "mlp.gate.weight", {ne, h})}, pool));
  L.expert_gate_up.resize(s.num_local_experts);
  L.expert_down.resize(s.num_local_experts);
  for (int x = 0; x < s.num_local_experts; ++x)  // local x is the model's expert s.expert_begin + x
    BATON_RETURN_IF_ERROR(load_gated_mlp(ckpt, fmt::format("{}mlp.experts.{}.", p, s.expert_begin + x), h, mi,
                                         s.moe_intermediate_begin, s.moe_intermediate_size, pool, L.expert_gate_up[x],
                                         L.expert_down[x]));
  if (c.arch != Arch::kDeepseekV3) return Status::ok();
  BATON_ASSIGN_OR_RETURN(L.expert_bias, load_tensor(ckpt, whole(p + "mlp.gate.e_score_correction_bias", {ne}), pool));
  if (c.deepseek_moe.n_shared_experts > 0) {
    const int64_t si = mi * c.deepseek_moe.n_shared_experts;
    BATON_RETURN_IF_ERROR(load_gated_mlp(ckpt, p + "mlp.shared_experts.", h, si, s.shared_intermediate_begin,
                                         s.shared_intermediate_size, pool, L.shared_gate_up, L.shared_down));
  }
  return Status::ok();
}

// MLA: the latent projections (q_a, kv_a and their norms) whole; q_b (or
// q_proj), kv_b_proj and o_proj for the shard's heads only.
Status load_mla(const Checkpoint& ckpt, const ModelConfig& c, const TpShard& s, const std::string& p, ThreadPool* pool,
                CpuLayerWeights& L) {
  const MlaConfig& m = c.mla;
  const int64_t h = c.hidden_size, nh = c.num_heads, nope = m.qk_nope_head_dim, vd = m.v_head_dim;
  const int64_t rank = m.kv_lora_rank, qk = m.qk_head_dim(), head0 = s.head_begin, heads = s.num_heads;
  CpuMlaWeights& w = L.mla;
  const Slice kv_a = whole(p + "self_attn.kv_a_proj_with_mqa.weight", {m.latent_dim(), h});
  if (m.q_lora_rank > 0) {
    BATON_ASSIGN_OR_RETURN(w.qkv_a,
                           load_packed(ckpt, {whole(p + "self_attn.q_a_proj.weight", {m.q_lora_rank, h}), kv_a}, pool));
    BATON_ASSIGN_OR_RETURN(w.q_a_norm,
                           load_tensor(ckpt, whole(p + "self_attn.q_a_layernorm.weight", {m.q_lora_rank}), pool));
    BATON_ASSIGN_OR_RETURN(
        w.q_b, load_packed(
                   ckpt, {row_slice(p + "self_attn.q_b_proj.weight", {nh * qk, m.q_lora_rank}, head0 * qk, heads * qk)},
                   pool));
  } else {
    BATON_ASSIGN_OR_RETURN(
        w.qkv_a,
        load_packed(ckpt, {row_slice(p + "self_attn.q_proj.weight", {nh * qk, h}, head0 * qk, heads * qk), kv_a},
                    pool));
  }
  BATON_ASSIGN_OR_RETURN(w.kv_a_norm, load_tensor(ckpt, whole(p + "self_attn.kv_a_layernorm.weight", {rank}), pool));
  // kv_b_proj: [heads * (nope + v), rank]; head j's rows are its K-nope rows then its V rows.
  BATON_ASSIGN_OR_RETURN(std::vector<float> kv_b,
                         load_tensor(ckpt,
                                     row_slice(p + "self_attn.kv_b_proj.weight", {nh * (nope + vd), rank},
                                               head0 * (nope + vd), heads * (nope + vd)),
                                     pool));
  w.uk_t.resize(heads);
  w.uv.resize(heads);
  std::vector<float> uk_t(rank * nope);  // [rank, nope]
  for (int64_t j = 0; j < heads; ++j) {
    const float* head = kv_b.data() + j * (nope + vd) * rank;  // [nope + v, rank]
    for (int64_t d = 0; d < nope; ++d)
      for (int64_t r = 0; r < rank; ++r) uk_t[r * nope + d] = head[d * rank + r];
    w.uk_t[j] = pack_weight(uk_t.data(), rank, nope);
    w.uv[j] = pack_weight(head + nope * rank, vd, rank);
  }
  BATON_ASSIGN_OR_RETURN(
      L.o_proj,
      load_packed(ckpt, {col_slice(p + "self_attn.o_proj.weight", {h, nh * vd}, head0 * vd, heads * vd)}, pool));
  return Status::ok();
}

Status load_layer(const Checkpoint& ckpt, const ModelConfig& c, const TpShard& s, int i, ThreadPool* pool,
                  CpuLayerWeights& L) {
  const std::string p = fmt::format("model.layers.{}.", i);
  const int64_t h = c.hidden_size, hd = c.head_dim, q = c.q_size(), kv = c.kv_size();
  BATON_ASSIGN_OR_RETURN(L.input_norm, load_tensor(ckpt, whole(p + "input_layernorm.weight", {h}), pool));
  BATON_ASSIGN_OR_RETURN(L.post_norm, load_tensor(ckpt, whole(p + "post_attention_layernorm.weight", {h}), pool));
  if (c.is_mla()) {
    BATON_RETURN_IF_ERROR(load_mla(ckpt, c, s, p, pool, L));
    return load_mlp(ckpt, c, s, i, p, pool, L);
  }

  // This rank's query heads and the KV heads they read.
  const int64_t q0 = s.head_begin * hd, qn = s.num_heads * hd, kv0 = s.kv_head_begin * hd, kvn = s.num_kv_heads * hd;
  const std::string a = p + "self_attn.";
  BATON_ASSIGN_OR_RETURN(L.qkv, load_packed(ckpt,
                                            {row_slice(a + "q_proj.weight", {q, h}, q0, qn),
                                             row_slice(a + "k_proj.weight", {kv, h}, kv0, kvn),
                                             row_slice(a + "v_proj.weight", {kv, h}, kv0, kvn)},
                                            pool));
  if (c.qkv_bias) {
    L.qkv_bias.resize(static_cast<size_t>(qn + 2 * kvn));
    BATON_RETURN_IF_ERROR(load_into(ckpt, row_slice(a + "q_proj.bias", {q}, q0, qn), L.qkv_bias.data(), pool));
    BATON_RETURN_IF_ERROR(load_into(ckpt, row_slice(a + "k_proj.bias", {kv}, kv0, kvn), L.qkv_bias.data() + qn, pool));
    BATON_RETURN_IF_ERROR(
        load_into(ckpt, row_slice(a + "v_proj.bias", {kv}, kv0, kvn), L.qkv_bias.data() + qn + kvn, pool));
  }
  if (c.qk_norm) {  // per head, the same weight for every head
    BATON_ASSIGN_OR_RETURN(L.q_norm, load_tensor(ckpt, whole(a + "q_norm.weight", {hd}), pool));
    BATON_ASSIGN_OR_RETURN(L.k_norm, load_tensor(ckpt, whole(a + "k_norm.weight", {hd}), pool));
  }
  BATON_ASSIGN_OR_RETURN(L.o_proj, load_packed(ckpt, {col_slice(a + "o_proj.weight", {h, q}, q0, qn)}, pool));
  // Llama's attention_bias also biases o_proj; Qwen2's q/k/v bias does not.
  // Added after the all-reduce's sum only once: rank 0 holds it.
  if (ckpt.has(a + "o_proj.bias") && s.rank == 0) {
    BATON_ASSIGN_OR_RETURN(L.o_bias, load_tensor(ckpt, whole(a + "o_proj.bias", {h}), pool));
  }

  return load_mlp(ckpt, c, s, i, p, pool, L);
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

size_t CpuWeights::routed_expert_bytes() const {
  size_t n = 0;
  for (const auto& L : layers) n += bytes_of(L.expert_gate_up) + bytes_of(L.expert_down);
  return n;
}

Result<CpuWeights> CpuWeights::load(const Checkpoint& ckpt, const TpShard& shard, ThreadPool* pool) {
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
  const int64_t v0 = shard.vocab_begin, vn = shard.vocab_count(c);
  CpuWeights w;

  BATON_ASSIGN_OR_RETURN(w.final_norm, load_tensor(ckpt, whole("model.norm.weight", {h}), pool));
  if (c.tie_word_embeddings) {
    BATON_ASSIGN_OR_RETURN(w.lm_head,
                           load_packed(ckpt, {row_slice("model.embed_tokens.weight", {vocab, h}, v0, vn)}, pool));
  } else {
    BATON_ASSIGN_OR_RETURN(w.embed,
                           load_tensor(ckpt, row_slice("model.embed_tokens.weight", {vocab, h}, v0, vn), pool));
    BATON_ASSIGN_OR_RETURN(w.lm_head, load_packed(ckpt, {row_slice("lm_head.weight", {vocab, h}, v0, vn)}, pool));
  }
  w.layers.resize(c.num_layers);
  for (int i = 0; i < c.num_layers; ++i) BATON_RETURN_IF_ERROR(load_layer(ckpt, c, shard, i, pool, w.layers[i]));
  return w;
}

}  // namespace baton

// backend-ops runners for DeepSeek-V3's ops: attention on the latent cache
// (prefill and split decode) against the CPU's paged_attention over a latent
// layout; the latent row / q LoRA norm, the queries into latent space and the
// heads out of it (batched GEMMs), W_UK's split from kv_b; the grouped
// sigmoid routing against grouped_topk_route.
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend_ops.h"

namespace baton::cuda::ops {
namespace {

using testing::download;
using testing::download_bf16;
using testing::poisoned_bf16;
using testing::poisoned_f32;
using testing::random_bf16_values;
using testing::round_bf16;
using testing::upload;
using testing::upload_bf16;

// A latent cache of random bf16 values (an fp32 copy for the CPU).
PagedCache make_latent_cache(int layers, int rank, int rope, int block_size, int num_blocks, std::mt19937& rng) {
  return make_paged_cache(KvLayout{layers, 1, rank + rope, block_size, num_blocks, DType::kBF16, rank, rope}, rng);
}

std::vector<Check> run_mla_attention(const MlaShape& s, std::mt19937& rng) {
  const int layers = 2, layer = 1, nh = s.num_heads, rank = s.kv_lora_rank, latent = rank + s.rope_dim;
  const Batch b = make_batch(s.q_lens, s.ctx_lens, s.block_size, rng);
  PagedCache cache = make_latent_cache(layers, rank, s.rope_dim, s.block_size, b.total_blocks + 3, rng);
  const auto q = random_bf16_values(static_cast<size_t>(b.num_tokens) * nh * latent, 1.0f, rng);
  const size_t out_elems = static_cast<size_t>(b.num_tokens) * nh * rank;
  const float scale = 1.0f / std::sqrt(static_cast<float>(latent));
  auto dq = upload_bf16(q);
  auto dout = poisoned_bf16(out_elems);
  const DeviceBatch db = upload_batch(b);
  MlaAttnArgs a;
  static_cast<AttnArgs&>(a) = device_attention_args(db, b, cache, layer, dq.as<bf16>(), dout.as<bf16>(), nh, scale);
  a.kv_lora_rank = rank;
  a.rope_dim = s.rope_dim;
  DeviceBuffer partial, ditems;
  if (s.decode) {
    const int splits = s.split_len > 0 ? (b.max_len + s.split_len - 1) / s.split_len : 1;
    BATON_CHECK_OK(partial.allocate(static_cast<size_t>(a.num_seqs) * nh * splits * (rank + 2) * 4));
    launch_mla_attention_decode(a, s.split_len, splits, partial.as<float>(), nullptr);
  } else {
    std::vector<int32_t> items;
    const int rpt = mla_rows_per_tile();
    for (size_t i = 0; i < s.q_lens.size(); ++i)
      for (int tile = 0; tile < (s.q_lens[i] * nh + rpt - 1) / rpt; ++tile) {
        items.push_back(static_cast<int32_t>(i));
        items.push_back(tile * rpt);
      }
    ditems = upload(items);
    launch_mla_attention_prefill(a, ditems.as<int32_t>(), static_cast<int>(items.size() / 2), nullptr);
  }
  const auto out = download_bf16(dout, out_elems);

  const PagedAttentionArgs c = reference_attention_args(b, cache, layer, q.data(), nh, scale);
  std::vector<float> ref(out_elems);
  paged_attention(c, ref.data(), &reference_pool());
  return {compare("out", out, ref, kTolBf16)};
}

// Inputs shared by the projection runners.
struct ProjInputs {
  int q_cols = 0, latent = 0, qk = 0, stride = 0;
  std::vector<int32_t> positions;
  std::vector<float> inv_freq;
};
ProjInputs proj_inputs(const MlaProjShape& s, std::mt19937& rng) {
  ProjInputs p;
  p.qk = s.nope + s.rope_dim;
  p.q_cols = s.q_lora_rank > 0 ? s.q_lora_rank : s.num_heads * p.qk;
  p.latent = s.kv_lora_rank + s.rope_dim;
  p.stride = p.q_cols + p.latent;
  std::uniform_int_distribution<int> pos(0, 5000);
  for (int t = 0; t < s.tokens; ++t) p.positions.push_back(pos(rng));
  RopeScaling yarn;
  yarn.rope_type = "yarn";
  yarn.factor = 40.0;
  yarn.original_max_position_embeddings = 4096;
  p.inv_freq = rope_inv_freq(s.rope_dim, 10000.0, yarn);
  return p;
}

std::vector<Check> run_mla_prepare(const MlaProjShape& s, std::mt19937& rng) {
  const ProjInputs p = proj_inputs(s, rng);
  const int n = s.tokens, rank = s.kv_lora_rank, layers = 2, layer = 1;
  const int blocks = (n + s.block_size - 1) / s.block_size + 2;
  PagedCache cache = make_latent_cache(layers, rank, s.rope_dim, s.block_size, blocks, rng);
  std::vector<int64_t> slots(n);
  for (int t = 0; t < n; ++t) slots[t] = (t % 3 == 2) ? -1 : t + s.block_size;  // -1: a padding token
  const auto qkv = random_bf16_values(static_cast<size_t>(n) * p.stride, 2.0f, rng);
  const auto qn = random_bf16_values(p.q_cols, 1.0f, rng), kn = random_bf16_values(rank, 1.0f, rng);
  const float mscale = 1.25f;
  auto dqkv = upload_bf16(qkv), dqn = upload_bf16(qn), dkn = upload_bf16(kn), dpos = upload(p.positions),
       dslots = upload(slots), dinv = upload(p.inv_freq);
  auto dqa = poisoned_bf16(static_cast<size_t>(n) * p.q_cols);
  MlaPrepareArgs a;
  a.qkv_a = dqkv.as<bf16>();
  a.qkv_a_stride = p.stride;
  a.q_cols = p.q_cols;
  a.q_a_norm = s.q_lora_rank > 0 ? dqn.as<bf16>() : nullptr;
  a.q_a_out = dqa.as<bf16>();
  a.kv_a_norm = dkn.as<bf16>();
  a.positions = dpos.as<int32_t>();
  a.slot_mapping = dslots.as<int64_t>();
  a.inv_freq = dinv.as<float>();
  a.rope_scale = mscale;
  a.interleaved = s.interleaved;
  a.kv = cache.kv;
  a.layer = layer;
  a.num_tokens = n;
  a.kv_lora_rank = rank;
  a.rope_dim = s.rope_dim;
  launch_mla_prepare(a, nullptr);
  std::vector<Check> checks;
  const auto cache_out = download_bf16(cache.dev, cache.host.size());
  // CPU: q LoRA norm, latent norm, rope on the key part, write_latent.
  std::vector<float> rows(static_cast<size_t>(n) * p.latent), cos_sin(static_cast<size_t>(n) * s.rope_dim);
  for (int t = 0; t < n; ++t)
    std::copy(qkv.begin() + static_cast<size_t>(t) * p.stride + p.q_cols,
              qkv.begin() + static_cast<size_t>(t + 1) * p.stride, rows.begin() + static_cast<size_t>(t) * p.latent);
  for (int t = 0; t < n; ++t)
    rmsnorm(&rows[static_cast<size_t>(t) * p.latent], kn.data(), 1, rank, 1e-6f,
            &rows[static_cast<size_t>(t) * p.latent]);
  rope_cos_sin(p.positions.data(), n, p.inv_freq.data(), s.rope_dim / 2, cos_sin.data());
  for (float& v : cos_sin) v *= mscale;
  apply_rope_strided(rows.data() + rank, n, 1, p.latent, s.rope_dim, s.interleaved, cos_sin.data());
  std::vector<float> ref = cache.host;
  for (int t = 0; t < n; ++t)
    if (slots[t] >= 0)
      write_latent(&rows[static_cast<size_t>(t) * p.latent], &slots[t], 1, cache.layout, layer, ref.data());
  checks.push_back(compare("cache", cache_out, ref, kTolBf16));
  if (s.q_lora_rank > 0) {
    std::vector<float> qa(static_cast<size_t>(n) * p.q_cols);
    for (int t = 0; t < n; ++t)
      rmsnorm(&qkv[static_cast<size_t>(t) * p.stride], qn.data(), 1, p.q_cols, 1e-6f,
              &qa[static_cast<size_t>(t) * p.q_cols]);
    checks.push_back(compare("q_a", download_bf16(dqa, qa.size()), qa, kTolBf16));
  }
  return checks;
}

// W_UK^T per head from kv_b: [nh, rank, nope] (exact: a gather).
std::vector<float> split_uk_ref(const std::vector<float>& kv_b, const MlaProjShape& s) {
  const int rank = s.kv_lora_rank, nope = s.nope;
  std::vector<float> uk(static_cast<size_t>(s.num_heads) * rank * nope);
  for (int h = 0; h < s.num_heads; ++h)
    for (int r = 0; r < rank; ++r)
      for (int d = 0; d < nope; ++d)
        uk[(static_cast<size_t>(h) * rank + r) * nope + d] =
            kv_b[(static_cast<size_t>(h) * (nope + s.v_dim) + d) * rank + r];
  return uk;
}

std::vector<Check> run_mla_split_uk(const MlaProjShape& s, std::mt19937& rng) {
  const auto kv_b = random_bf16_values(static_cast<size_t>(s.num_heads) * (s.nope + s.v_dim) * s.kv_lora_rank, 1.0f,
                                       rng);
  auto dkvb = upload_bf16(kv_b);
  const size_t n = static_cast<size_t>(s.num_heads) * s.kv_lora_rank * s.nope;
  auto duk = poisoned_bf16(n);
  launch_mla_split_uk(dkvb.as<bf16>(), duk.as<bf16>(), s.num_heads, s.nope, s.v_dim, s.kv_lora_rank, nullptr);
  return {compare_exact("uk_t", download_bf16(duk, n), split_uk_ref(kv_b, s))};
}

std::vector<Check> run_mla_q_latent(const MlaProjShape& s, std::mt19937& rng) {
  const ProjInputs p = proj_inputs(s, rng);
  const int n = s.tokens, nh = s.num_heads, rank = s.kv_lora_rank, nope = s.nope;
  // q rows of qkv_a (no q LoRA: rows p.stride apart) or q_b's output (nh * qk apart).
  const int64_t q_stride = s.q_lora_rank > 0 ? static_cast<int64_t>(nh) * p.qk : p.stride;
  const auto q = random_bf16_values(static_cast<size_t>(n) * q_stride, 2.0f, rng);
  const auto uk = random_bf16_values(static_cast<size_t>(nh) * rank * nope, 0.5f, rng);
  const float mscale = 0.9f;
  auto dq = upload_bf16(q), duk = upload_bf16(uk), dpos = upload(p.positions), dinv = upload(p.inv_freq);
  const size_t out_elems = static_cast<size_t>(n) * nh * p.latent;
  auto dql = poisoned_bf16(out_elems);
  MlaQRopeArgs a;
  a.q = dq.as<bf16>();
  a.q_stride = q_stride;
  a.q_latent = dql.as<bf16>();
  a.positions = dpos.as<int32_t>();
  a.inv_freq = dinv.as<float>();
  a.rope_scale = mscale;
  a.interleaved = s.interleaved;
  a.num_tokens = n;
  a.num_heads = nh;
  a.nope = nope;
  a.rope_dim = s.rope_dim;
  a.kv_lora_rank = rank;
  launch_mla_q_rope(a, nullptr);
  Gemm gemm;
  BATON_CHECK_OK(gemm.init(8u << 20));
  BatchedGemm g;
  g.x = dq.as<bf16>();
  g.ldx = q_stride;
  g.x_batch = p.qk;
  g.w = duk.as<bf16>();
  g.ldw = nope;
  g.w_batch = static_cast<int64_t>(rank) * nope;
  g.y = dql.as<bf16>();
  g.ldy = static_cast<int64_t>(nh) * p.latent;
  g.y_batch = p.latent;
  g.batch = nh;
  g.m = n;
  g.n = rank;
  g.k = nope;
  gemm.run_batched(g, nullptr);
  const auto out = download_bf16(dql, out_elems);
  // CPU: per (token, head), the nope part through W_UK and the roped part.
  std::vector<float> ref(out_elems), cos_sin(static_cast<size_t>(n) * s.rope_dim);
  rope_cos_sin(p.positions.data(), n, p.inv_freq.data(), s.rope_dim / 2, cos_sin.data());
  for (float& v : cos_sin) v *= mscale;
  for (int t = 0; t < n; ++t)
    for (int h = 0; h < nh; ++h) {
      const float* qh = &q[static_cast<size_t>(t) * q_stride + static_cast<size_t>(h) * p.qk];
      float* o = &ref[(static_cast<size_t>(t) * nh + h) * p.latent];
      for (int r = 0; r < rank; ++r) {
        double acc = 0.0;
        for (int d = 0; d < nope; ++d) acc += double(qh[d]) * uk[(static_cast<size_t>(h) * rank + r) * nope + d];
        o[r] = static_cast<float>(acc);
      }
      std::copy(qh + nope, qh + p.qk, o + rank);
    }
  for (int t = 0; t < n; ++t)
    apply_rope_strided(&ref[static_cast<size_t>(t) * nh * p.latent + rank], 1, nh, p.latent, s.rope_dim, s.interleaved,
                       &cos_sin[static_cast<size_t>(t) * s.rope_dim]);
  return {compare("q_latent", out, ref, kTolBf16)};
}

std::vector<Check> run_mla_unabsorb(const MlaProjShape& s, std::mt19937& rng) {
  const int n = s.tokens, nh = s.num_heads, rank = s.kv_lora_rank, nope = s.nope, vd = s.v_dim;
  const auto ol = random_bf16_values(static_cast<size_t>(n) * nh * rank, 1.0f, rng);
  const auto kv_b = random_bf16_values(static_cast<size_t>(nh) * (nope + vd) * rank, 0.5f, rng);
  auto dol = upload_bf16(ol), dkvb = upload_bf16(kv_b);
  const size_t out_elems = static_cast<size_t>(n) * nh * vd;
  auto dout = poisoned_bf16(out_elems);
  Gemm gemm;
  BATON_CHECK_OK(gemm.init(8u << 20));
  BatchedGemm g;
  g.x = dol.as<bf16>();
  g.ldx = static_cast<int64_t>(nh) * rank;
  g.x_batch = rank;
  g.w = dkvb.as<bf16>() + static_cast<int64_t>(nope) * rank;
  g.ldw = rank;
  g.w_batch = static_cast<int64_t>(nope + vd) * rank;
  g.y = dout.as<bf16>();
  g.ldy = static_cast<int64_t>(nh) * vd;
  g.y_batch = vd;
  g.batch = nh;
  g.m = n;
  g.n = vd;
  g.k = rank;
  gemm.run_batched(g, nullptr);
  const auto out = download_bf16(dout, out_elems);
  std::vector<float> ref(out_elems);
  for (int t = 0; t < n; ++t)
    for (int h = 0; h < nh; ++h)
      for (int j = 0; j < vd; ++j) {
        double acc = 0.0;
        const float* w = &kv_b[(static_cast<size_t>(h) * (nope + vd) + nope + j) * rank];
        for (int r = 0; r < rank; ++r) acc += double(ol[(static_cast<size_t>(t) * nh + h) * rank + r]) * w[r];
        ref[(static_cast<size_t>(t) * nh + h) * vd + j] = static_cast<float>(acc);
      }
  return {compare("out", out, ref, kTolBf16)};
}

std::vector<Check> run_moe_grouped_topk(const GroupedRouteShape& s, std::mt19937& rng) {
  const int n = s.tokens, e = s.experts, k = s.top_k;
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(n) * e), bias(e);
  for (float& v : logits) v = d(rng);
  for (float& v : bias) v = 0.1f * d(rng);
  auto dl = upload(logits), db = upload(bias);
  DeviceBuffer dids, dw = poisoned_f32(static_cast<size_t>(n) * k);
  BATON_CHECK_OK(dids.allocate(static_cast<size_t>(n) * k * 4));
  GroupedTopkDevArgs a;
  a.num_experts = e;
  a.top_k = k;
  a.n_group = s.n_group;
  a.topk_group = s.topk_group;
  a.renorm = s.renorm;
  a.scaling = s.scaling;
  launch_moe_grouped_topk(dl.as<float>(), db.as<float>(), n, a, dids.as<int32_t>(), dw.as<float>(), nullptr);
  const auto ids = download<int32_t>(dids, static_cast<size_t>(n) * k);
  const auto w = download<float>(dw, static_cast<size_t>(n) * k);
  GroupedTopkArgs c;
  c.num_experts = e;
  c.top_k = k;
  c.n_group = s.n_group;
  c.topk_group = s.topk_group;
  c.renormalize = s.renorm;
  c.routed_scaling_factor = s.scaling;
  std::vector<int32_t> rids(static_cast<size_t>(n) * k);
  std::vector<float> rw(rids.size());
  grouped_topk_route(logits.data(), bias.data(), n, c, rids.data(), rw.data());
  return {compare_exact("ids", ids, rids), compare("weights", w, rw, kTolRouteW)};
}

std::string proj_name(const MlaProjShape& s) {
  return "t" + std::to_string(s.tokens) + " nh" + std::to_string(s.num_heads) + " qlora" +
         std::to_string(s.q_lora_rank) + " rank" + std::to_string(s.kv_lora_rank) + " nope" + std::to_string(s.nope) +
         " rope" + std::to_string(s.rope_dim) + " v" + std::to_string(s.v_dim) + " bs" + std::to_string(s.block_size) +
         (s.interleaved ? " interleaved" : " halves");
}

}  // namespace

OpCase mla_attention_case(const MlaShape& s) {
  std::string shape = "rank" + std::to_string(s.kv_lora_rank) + " rope" + std::to_string(s.rope_dim) + " nh" +
                      std::to_string(s.num_heads) + " bs" + std::to_string(s.block_size) + " q" + join(s.q_lens) +
                      " ctx" + join(s.ctx_lens);
  if (s.decode) shape += " split" + std::to_string(s.split_len);
  return make_case(s.decode ? "mla_attention_decode" : "mla_attention_prefill", shape, s, run_mla_attention);
}
OpCase mla_prepare_case(const MlaProjShape& s) { return make_case("mla_prepare", proj_name(s), s, run_mla_prepare); }
OpCase mla_q_latent_case(const MlaProjShape& s) { return make_case("mla_q_latent", proj_name(s), s, run_mla_q_latent); }
OpCase mla_unabsorb_case(const MlaProjShape& s) { return make_case("mla_unabsorb", proj_name(s), s, run_mla_unabsorb); }
OpCase mla_split_uk_case(const MlaProjShape& s) { return make_case("mla_split_uk", proj_name(s), s, run_mla_split_uk); }
OpCase moe_grouped_topk_case(const GroupedRouteShape& s) {
  std::string shape = "t" + std::to_string(s.tokens) + " e" + std::to_string(s.experts) + " k" +
                      std::to_string(s.top_k) + " groups" + std::to_string(s.n_group) + " keep" +
                      std::to_string(s.topk_group) + (s.renorm ? " renorm" : "");
  return make_case("moe_grouped_topk", shape, s, run_moe_grouped_topk);
}

}  // namespace baton::cuda::ops

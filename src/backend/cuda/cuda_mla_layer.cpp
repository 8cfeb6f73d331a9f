// CudaBackend's DeepSeek-V3 blocks: multi-head latent attention in the
// absorbed form (as the CPU backend's cpu_mla_attention.cpp, FlashMLA and
// vLLM's MLA backends) for decode and small prefills:
//
//   qkv_a      = normed . [q_a_proj | q_proj ; kv_a_proj_with_mqa]^T
//   cache row  = [rmsnorm(c_kv) * kv_a_norm, rope(k_pe)]          (mla_prepare)
//   q          = q_b_proj(rmsnorm(q_a) * q_a_norm), or q_proj's rows
//   q_latent   = [q_nope[h] . W_UK[h], rope(q_pe[h])]              (batched GEMM, mla_q_rope)
//   o_latent   = attention of q_latent over the cached rows
//   out[h]     = o_latent[h] . W_UV[h]^T, then o_proj              (batched GEMM, GEMM)
//
// and in the expanded form for prefill steps of at least kMlaExpandMinTokens
// new tokens whose keys fit the expansion workspace (mla_prefill.h):
//
//   q[h]       = [q_nope[h], rope(q_pe[h])]                         (mla_q_rope, in place)
//   latent     = the sequences' cached rows, gathered              (mla_gather_latent)
//   [K_nope[h], V[h]] = latent[:, :rank] . kv_b^T                   (GEMM)
//   out[h]     = attention of q[h] over [K_nope[h], k_rope], V[h]   (wgmma kernel, 192 / 128)
//
// and the MoE block shared with Qwen3-MoE, with DeepSeekMoE's routing
// (sigmoid, correction bias, group-limited top-k, routed scaling) and its
// shared experts added in the combine.
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/mla_prefill.h"
#include "backend/cuda/moe_local_experts.h"
#include "model/yarn.h"

namespace baton::cuda {

void CudaBackend::mla_attention(const Launch& l, int i, const KvDev& kvd) {
  const ModelConfig& c = config_;
  const MlaConfig& m = c.mla;
  const Layout& lay = l.lay;
  const CudaLayerWeights& L = weights_.layers[i];
  char* dev = static_cast<char*>(input_dev_.get());
  const int t = lay.num_tokens, h = c.hidden_size, nh = c.num_heads;
  const int rank = m.kv_lora_rank, rope = m.qk_rope_head_dim, nope = m.qk_nope_head_dim, vd = m.v_head_dim;
  const int qk = m.qk_head_dim(), latent = m.latent_dim();
  const int q_cols = m.q_lora_rank > 0 ? m.q_lora_rank : nh * qk;
  const auto* positions = reinterpret_cast<const int32_t*>(dev + lay.positions);
  const float rope_scale = static_cast<float>(rope_attention_factor(c));

  gemm_.run(normed_.as<bf16>(), L.qkv_a, qkv_.get(), t, q_cols + latent, h, false, stream_);  // [t, q_cols + latent]
  MlaPrepareArgs pa;
  pa.qkv_a = qkv_.as<bf16>();
  pa.qkv_a_stride = q_cols + latent;
  pa.q_cols = q_cols;
  pa.q_a_norm = L.q_a_norm;
  pa.q_a_out = q_a_.as<bf16>();
  pa.kv_a_norm = L.kv_a_norm;
  pa.eps = static_cast<float>(c.rms_norm_eps);
  pa.positions = positions;
  pa.slot_mapping = reinterpret_cast<const int64_t*>(dev + lay.slots);
  pa.inv_freq = inv_freq_.as<float>();
  pa.rope_scale = rope_scale;
  pa.interleaved = m.rope_interleave;
  pa.kv = kvd;
  pa.layer = i;
  pa.num_tokens = t;
  pa.kv_lora_rank = rank;
  pa.rope_dim = rope;
  launch_mla_prepare(pa, stream_);

  // The per-head queries [t, nh, qk]: q_b_proj's output, or q_proj's rows of qkv_a.
  const bf16* q = qkv_.as<bf16>();
  int64_t q_stride = q_cols + latent;
  if (m.q_lora_rank > 0) {
    gemm_.run(q_a_.as<bf16>(), L.q_b, q_.get(), t, nh * qk, q_cols, false, stream_);  // [t, nh * qk]
    q = q_.as<bf16>();
    q_stride = static_cast<int64_t>(nh) * qk;
  }
  if (mla_expands(l)) {
    mla_prefill_expanded(l, i, kvd);
    gemm_.run(attn_.as<bf16>(), L.o_proj, proj_.get(), t, h, nh * vd, false, stream_);  // [t, h]
    return;
  }
  MlaQRopeArgs qa;
  qa.q = q;
  qa.q_stride = q_stride;
  qa.q_latent = q_latent_.as<bf16>();
  qa.positions = positions;
  qa.inv_freq = inv_freq_.as<float>();
  qa.rope_scale = rope_scale;
  qa.interleaved = m.rope_interleave;
  qa.num_tokens = t;
  qa.num_heads = nh;
  qa.nope = nope;
  qa.rope_dim = rope;
  qa.kv_lora_rank = rank;
  launch_mla_q_rope(qa, stream_);
  // q_latent[:, h, :rank] = q[:, h, :nope] . uk_t[h]^T (uk_t[h]: [rank, nope])
  BatchedGemm absorb_q;
  absorb_q.x = q;
  absorb_q.ldx = q_stride;
  absorb_q.x_batch = qk;
  absorb_q.w = L.uk_t;
  absorb_q.ldw = nope;
  absorb_q.w_batch = static_cast<int64_t>(rank) * nope;
  absorb_q.y = q_latent_.as<bf16>();
  absorb_q.ldy = static_cast<int64_t>(nh) * latent;
  absorb_q.y_batch = latent;
  absorb_q.batch = nh;
  absorb_q.m = t;
  absorb_q.n = rank;
  absorb_q.k = nope;
  gemm_.run_batched(absorb_q, stream_);

  MlaAttnArgs aa;
  static_cast<AttnArgs&>(aa) = paged_attention_args(l, i, kvd, q_latent_.as<bf16>(), o_latent_.as<bf16>());
  aa.kv_lora_rank = rank;
  aa.rope_dim = rope;
  aa.scale = static_cast<float>(attention_softmax_scale(c));
  if (l.decode_only) {
    launch_mla_attention_decode(aa, l.split_len, l.max_splits, mla_partial_.as<float>(), stream_);
  } else {
    launch_mla_attention_prefill(aa, reinterpret_cast<const int32_t*>(dev + lay.items), lay.num_items, stream_);
  }

  // attn[:, h, :] = o_latent[:, h, :] . W_UV[h]^T (W_UV[h]: kv_b's V rows of head h, [vd, rank])
  BatchedGemm unabsorb;
  unabsorb.x = o_latent_.as<bf16>();
  unabsorb.ldx = static_cast<int64_t>(nh) * rank;
  unabsorb.x_batch = rank;
  unabsorb.w = L.kv_b + static_cast<int64_t>(nope) * rank;
  unabsorb.ldw = rank;
  unabsorb.w_batch = static_cast<int64_t>(nope + vd) * rank;
  unabsorb.y = attn_.as<bf16>();
  unabsorb.ldy = static_cast<int64_t>(nh) * vd;
  unabsorb.y_batch = vd;
  unabsorb.batch = nh;
  unabsorb.m = t;
  unabsorb.n = vd;
  unabsorb.k = rank;
  gemm_.run_batched(unabsorb, stream_);
  gemm_.run(attn_.as<bf16>(), L.o_proj, proj_.get(), t, h, nh * vd, false, stream_);  // [t, h]
}

bool CudaBackend::mla_expands(const Launch& l) const {
  return mla_expand_keys_ > 0 && !l.decode_only && !options_.batch_invariant &&
         l.lay.num_tokens >= kMlaExpandMinTokens && l.total_keys <= mla_expand_keys_;
}

void CudaBackend::mla_prefill_expanded(const Launch& l, int i, const KvDev& kvd) {
  const ModelConfig& c = config_;
  const MlaConfig& m = c.mla;
  const Layout& lay = l.lay;
  char* dev = static_cast<char*>(input_dev_.get());
  const int t = lay.num_tokens, nh = c.num_heads, nope = m.qk_nope_head_dim, qk = m.qk_head_dim();
  const auto* query_start = reinterpret_cast<const int32_t*>(dev + lay.query_start);
  // q_ [t, nh, qk]: its rope part roped in place (the rope part's offset in a
  // row of qk values is nope, mla_q_rope's "kv_lora_rank").
  MlaQRopeArgs qa;
  qa.q = q_.as<bf16>();
  qa.q_stride = static_cast<int64_t>(nh) * qk;
  qa.q_latent = q_.as<bf16>();
  qa.positions = reinterpret_cast<const int32_t*>(dev + lay.positions);
  qa.inv_freq = inv_freq_.as<float>();
  qa.rope_scale = static_cast<float>(rope_attention_factor(c));
  qa.interleaved = m.rope_interleave;
  qa.num_tokens = t;
  qa.num_heads = nh;
  qa.nope = nope;
  qa.rope_dim = m.qk_rope_head_dim;
  qa.kv_lora_rank = nope;
  launch_mla_q_rope(qa, stream_);

  MlaExpandedStep st;
  st.q = q_.as<bf16>();
  st.out = attn_.as<bf16>();
  st.kv = kvd;
  st.layer = i;
  st.query_start = query_start;
  st.seq_lens = reinterpret_cast<const int32_t*>(dev + lay.seq_lens);
  st.block_tables = reinterpret_cast<const int32_t*>(dev + lay.block_tables);
  st.max_blocks_per_seq = lay.mbps;
  st.num_seqs = lay.num_seqs;
  st.num_tokens = t;
  st.total_keys = l.total_keys;
  st.kv_b = weights_.layers[i].kv_b;
  st.num_heads = nh;
  st.kv_lora_rank = m.kv_lora_rank;
  st.scale = static_cast<float>(attention_softmax_scale(c));
  st.latent_rows = mla_latent_rows_.as<bf16>();
  st.kv_rows = mla_kv_exp_.as<bf16>();
  st.plan = mla_plan_.as<int32_t>();
  launch_mla_expanded_attention(st, gemm_, stream_);
}

bool CudaBackend::moe_norms_in(int t) const {
  const ModelConfig& c = config_;
  return c.arch != Arch::kDeepseekV3 && !options_.batch_invariant &&
         moe_norm_router_route_supports(t, c.hidden_size, c.num_experts, c.num_experts_per_tok);
}

void CudaBackend::moe_block(int i, int t, const bf16* next_norm, const GemvNormIn* norm_in) {
  const ModelConfig& c = config_;
  const CudaLayerWeights& L = weights_.layers[i];
  const int h = c.hidden_size, e = c.num_experts, k = c.num_experts_per_tok, mi = c.moe_intermediate_size;
  // Only this rank's experts (all, or its expert-parallel run) get sorted
  // rows: the others' slots are left out here and summed in by the MoE
  // block's all-reduce.
  const int local = shard_.num_local_experts;
  // Decode (softmax routing): the router's logits, top-k and the sort in one launch.
  const bool one_launch = c.arch != Arch::kDeepseekV3 && !options_.batch_invariant &&
                          moe_router_route_supports(t, h, e, k);
  BATON_CHECK(norm_in == nullptr || (one_launch && moe_norms_in(t)), "moe block: norm-in router at {} tokens", t);
  if (norm_in != nullptr) {
    launch_moe_norm_router_route(*norm_in, normed_.as<bf16>(), L.router, t, h, e, k, c.norm_topk_prob,
                                 shard_.expert_begin, local, router_.as<float>(), moe_route_count_.as<int32_t>(),
                                 topk_ids_.as<int32_t>(), topk_w_.as<float>(), moe_offsets_.as<int32_t>(),
                                 sorted_slots_.as<int32_t>(), slot_pos_.as<int32_t>(), stream_, moe_runs_.as<int32_t>(),
                                 moe_router_cluster_);
  } else if (one_launch) {
    launch_moe_router_route(normed_.as<bf16>(), L.router, t, h, e, k, c.norm_topk_prob, shard_.expert_begin, local,
                            router_.as<float>(), moe_route_count_.as<int32_t>(), topk_ids_.as<int32_t>(),
                            topk_w_.as<float>(), moe_offsets_.as<int32_t>(), sorted_slots_.as<int32_t>(),
                            slot_pos_.as<int32_t>(), stream_, moe_runs_.as<int32_t>(), moe_router_cluster_);
  } else {
    gemm_.run(normed_.as<bf16>(), L.router, router_.get(), t, e, h, true, stream_);  // [t, e] fp32
  }
  if (c.arch == Arch::kDeepseekV3) {
    GroupedTopkDevArgs ra;
    ra.num_experts = e;
    ra.top_k = k;
    ra.n_group = c.deepseek_moe.n_group;
    ra.topk_group = c.deepseek_moe.topk_group;
    ra.renorm = c.norm_topk_prob;
    ra.scaling = static_cast<float>(c.deepseek_moe.routed_scaling_factor);
    launch_moe_grouped_topk(router_.as<float>(), L.expert_bias, t, ra, topk_ids_.as<int32_t>(), topk_w_.as<float>(),
                            stream_);
    launch_moe_align_local(topk_ids_.as<int32_t>(), t * k, shard_.expert_begin, local, moe_offsets_.as<int32_t>(),
                           sorted_slots_.as<int32_t>(), slot_pos_.as<int32_t>(), stream_);
  } else if (!one_launch) {
    launch_moe_route(router_.as<float>(), t, e, k, c.norm_topk_prob, shard_.expert_begin, local,
                     topk_ids_.as<int32_t>(), topk_w_.as<float>(), moe_offsets_.as<int32_t>(),
                     sorted_slots_.as<int32_t>(), slot_pos_.as<int32_t>(), stream_);
  }
  // Decode's chain, each kernel waiting on the one before: the one-launch
  // routing, the skinny gate/up, the skinny down, the combine. So the down
  // kernel may read the routing's runs, and the combine the slots, weights
  // and the residual, before their programmatic waits.
  const bool skinny = !options_.batch_invariant && moe_skinny_supports(t, h) && moe_skinny_supports(t, mi);
  const bool early_inputs = skinny && one_launch;
  if (skinny) {
    // Decode's small batches: each routed expert's weights read once, SwiGLU
    // fused. On an H200 (Qwen3-30B-A3B) it beat the grouped GEMMs at every
    // batch up to 8: 5.10 against 5.69 ms a step at 2, 7.11 against 7.80 at 4,
    // 10.54 against 11.37 at 8.
    const MoeRouting r{topk_ids_.as<int32_t>(),
                       sorted_slots_.as<int32_t>(),
                       moe_offsets_.as<int32_t>(),
                       shard_.expert_begin,
                       local,
                       t,
                       t * k,
                       one_launch ? moe_runs_.as<int32_t>() : nullptr};
    launch_moe_skinny(r,
                      {.a = normed_.as<bf16>(),
                       .a_rows = sorted_slots_.as<int32_t>(),
                       .a_row_div = k,
                       .w = L.expert_gate_up,
                       .n = mi,
                       .k = h,
                       .gated = true,
                       .c = moe_act_.as<bf16>()},
                      stream_);  // [t k, mi]
    launch_moe_skinny(r,
                      {.a = moe_act_.as<bf16>(),
                       .w = L.expert_down,
                       .n = h,
                       .k = mi,
                       .c = moe_out_.as<bf16>(),
                       .runs_before_wait = early_inputs},
                      stream_);  // [t k, h]
  } else {
    const bool row_invariant = options_.batch_invariant;
    launch_moe_gate_up({.a = normed_.as<bf16>(),
                        .a_rows = sorted_slots_.as<int32_t>(),
                        .a_row_div = k,
                        .w = L.expert_gate_up,
                        .offsets = moe_offsets_.as<int32_t>(),
                        .num_experts = local,
                        .num_rows = t * k,
                        .n = 2 * mi,
                        .k = h,
                        .c = nullptr},
                       moe_gu_.as<bf16>(), moe_act_.as<bf16>(), row_invariant, stream_);  // [t k, mi]
    launch_grouped_gemm({.a = moe_act_.as<bf16>(),
                         .a_rows = nullptr,
                         .a_row_div = 1,
                         .w = L.expert_down,
                         .offsets = moe_offsets_.as<int32_t>(),
                         .num_experts = local,
                         .num_rows = t * k,
                         .n = h,
                         .k = mi,
                         .c = moe_out_.as<bf16>()},
                        row_invariant, stream_);  // [t k, h]
  }
  const bf16* shared = nullptr;
  if (L.shared_down) {  // DeepSeekMoE's shared experts: one dense MLP of n_shared * moe_inter, sliced by rank
    const int si = shard_.shared_intermediate_size;
    gemm_.run(normed_.as<bf16>(), L.shared_gate_up, shared_gu_.get(), t, 2 * si, h, false, stream_);  // [t, 2 si]
    launch_silu_mul(shared_gu_.as<bf16>(), shared_act_.as<bf16>(), t, si, stream_);
    gemm_.run(shared_act_.as<bf16>(), L.shared_down, shared_out_.get(), t, h, si, false, stream_);  // [t, h]
    shared = shared_out_.as<bf16>();
  }
  if (next_norm != nullptr) {
    launch_moe_combine_norm(moe_out_.as<bf16>(), slot_pos_.as<int32_t>(), topk_w_.as<float>(), t, k, h, shared,
                            residual_.as<float>(), next_norm, static_cast<float>(c.rms_norm_eps), normed_.as<bf16>(),
                            stream_, early_inputs);
    return;
  }
  launch_moe_combine(moe_out_.as<bf16>(), slot_pos_.as<int32_t>(), topk_w_.as<float>(), t, k, h, proj_.as<bf16>(),
                     stream_, shared);
}

}  // namespace baton::cuda

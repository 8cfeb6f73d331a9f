// CudaBackend's layers: the transformer blocks of one step, in order, over
// the backend's activation buffers (attention over the paged cache, the
// dense MLP; the MLA and MoE blocks are in cuda_mla_layer.cpp).
//
// Past that, before an FP8 projection that cuBLASLt's W8A8 takes whole, the
// norm and the SwiGLU quantise their output for it themselves (as
// launch_fp8_quantize_groups would, bit for bit), instead of writing bf16
// rows for the GEMM to quantise.
//
// Decode at 1 or 2 tokens on one rank (fuses_norms) runs each norm inside the
// GEMV that consumes it and each residual add inside the GEMV that produces
// it (gemv.cuh's norm-in and residual-add forms): a dense layer is then
// qkv, rope and cache, attention, o_proj, gate/up, down, with no separate
// add_rmsnorm. Bit for bit, the fused forms add what add_rmsnorm adds and
// round the normed rows as it does; the norm's sum of squares runs in
// another order.
#include <cmath>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/fp8_kernels.h"

namespace baton::cuda {

bool CudaBackend::fuses_norms(int t) const {
  const ModelConfig& c = config_;
  // e4m3's chunk (k % 16) for every linear, so FP8 and bf16 weights alike.
  return comm_ == nullptr && !options_.batch_invariant && !c.is_mla() &&
         gemv_norm_in_supports(t, c.hidden_size, true) && gemv_residual_add_supports(t, c.q_size(), true) &&
         (c.intermediate_size == 0 || gemv_residual_add_supports(t, c.intermediate_size, true));
}

bool CudaBackend::run_layers(const Launch& l) {
  const ModelConfig& c = config_;
  const int t = l.lay.num_tokens, h = c.hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  KvDev kvd;
  if (layout_.dtype == DType::kF8E4M3) kvd.fp8 = kv_.as<uint8_t>();
  else kvd.base = kv_.as<bf16>();
  kvd.block_elems = layout_.block_elems();
  kvd.layer_block_elems = layout_.layer_block_elems();
  kvd.half_elems = layout_.half_layer_block_elems();
  kvd.token_elems = layout_.token_elems();
  kvd.block_size = layout_.block_size;
  const bool fused = fuses_norms(t);
  bool normed_ready = false;  // the previous MoE block's combine already made this layer's normed_
  bool proj_pending = false;  // proj_ holds the previous block's output, not yet added into residual_
  for (int i = 0; i < c.num_layers; ++i) {
    const CudaLayerWeights& L = weights_.layers[i];
    // residual += previous block's output; normed = rmsnorm(residual) * input_norm
    // (fused: the qkv GEMV runs the norm itself).
    const bool qkv_norm_in = fused && !normed_ready && !proj_pending;
    const bool qkv_quantized = !normed_ready && !qkv_norm_in && !c.is_mla() &&
                               quantizes_ahead(L.qkv_f8, t, c.q_size() + 2 * c.kv_size(), h);
    if (!normed_ready && !qkv_norm_in)
      add_rmsnorm(proj_pending ? proj_.as<bf16>() : nullptr, nullptr, L.input_norm, qkv_quantized, t);
    normed_ready = false;
    if (c.is_mla()) {
      mla_attention(l, i, kvd);
    } else {
      attention_block(l, i, kvd,
                      qkv_norm_in ? QkvInput::kNormIn : (qkv_quantized ? QkvInput::kQuantized : QkvInput::kNormed),
                      fused);
    }
    proj_pending = !fused;  // fused: o_proj added its output into residual_
    all_reduce_proj(t);     // o_proj is row-parallel: the ranks' partial sums (MLA's as any attention's)
    const GemvNormIn post_norm{residual_.as<float>(), L.post_norm, eps};
    const bool moe_norm_in = L.is_moe && fused && moe_norms_in(t);
    const int in = c.intermediate_size;
    const bool mlp_quantized = !fused && !L.is_moe && quantizes_ahead(L.gate_up_f8, t, 2 * in, h);
    if (!fused || (L.is_moe && !moe_norm_in))
      add_rmsnorm(proj_pending ? proj_.as<bf16>() : nullptr, proj_pending ? L.o_bias : nullptr, L.post_norm,
                  mlp_quantized, t);
    proj_pending = false;
    if (!L.is_moe) {
      if (fused) {
        linear_norm_in(post_norm, L.gate_up, L.gate_up_f8, act_.as<bf16>(), t, in, h, true);  // [t, in]
        linear_residual_add(act_.as<bf16>(), L.down, L.down_f8, nullptr, t, h, in);           // residual += [t, h]
      } else {
        dense_mlp(L, mlp_quantized, t, in, h);  // proj_ [t, h]
        proj_pending = true;
      }
    } else if (comm_ == nullptr && i + 1 < c.num_layers) {
      // One rank (no all-reduce between the block and the next norm): the
      // combine also runs the next layer's add_rmsnorm.
      moe_block(i, t, weights_.layers[i + 1].input_norm, moe_norm_in ? &post_norm : nullptr);
      normed_ready = true;
    } else {
      moe_block(i, t, nullptr, moe_norm_in ? &post_norm : nullptr);
      proj_pending = true;
    }
    all_reduce_proj(t);
  }
  return proj_pending;
}

AttnArgs CudaBackend::paged_attention_args(const Launch& l, int i, const KvDev& kv, const bf16* q, bf16* out) const {
  const char* dev = static_cast<const char*>(input_dev_.get());
  AttnArgs a;
  a.q = q;
  a.out = out;
  a.kv = kv;
  a.layer = i;
  a.query_start = reinterpret_cast<const int32_t*>(dev + l.lay.query_start);
  a.seq_lens = reinterpret_cast<const int32_t*>(dev + l.lay.seq_lens);
  a.block_tables = reinterpret_cast<const int32_t*>(dev + l.lay.block_tables);
  a.max_blocks_per_seq = l.lay.mbps;
  a.num_seqs = l.lay.num_seqs;
  a.num_heads = config_.num_heads;
  return a;
}

void CudaBackend::attention_block(const Launch& l, int i, const KvDev& kvd, QkvInput qkv_in, bool o_residual_add) {
  const ModelConfig& c = config_;
  const Layout& lay = l.lay;
  const CudaLayerWeights& L = weights_.layers[i];
  char* dev = static_cast<char*>(input_dev_.get());
  const int t = lay.num_tokens, h = c.hidden_size, q = c.q_size(), kv = c.kv_size();
  const float eps = static_cast<float>(c.rms_norm_eps);
  if (qkv_in == QkvInput::kNormIn) {
    linear_norm_in({residual_.as<float>(), L.input_norm, eps}, L.qkv, L.qkv_f8, qkv_.as<bf16>(), t, q + 2 * kv, h,
                   false);  // [t, q + 2kv]
  } else if (qkv_in == QkvInput::kQuantized) {
    fp8_gemm_.run_quantized(L.qkv_f8, qkv_.as<bf16>(), t, q + 2 * kv, h, stream_);  // [t, q + 2kv]
  } else {
    linear(normed_.as<bf16>(), L.qkv, L.qkv_f8, qkv_.get(), t, q + 2 * kv, h);  // [t, q + 2kv]
  }
  QkvRopeArgs ra;
  ra.qkv = qkv_.as<bf16>();
  ra.bias = L.qkv_bias;
  ra.q_norm = L.q_norm;
  ra.k_norm = L.k_norm;
  ra.eps = eps;
  ra.positions = reinterpret_cast<const int32_t*>(dev + lay.positions);
  ra.slot_mapping = reinterpret_cast<const int64_t*>(dev + lay.slots);
  ra.inv_freq = inv_freq_.as<float>();
  ra.q_out = q_.as<bf16>();
  ra.kv = kvd;
  ra.layer = i;
  ra.num_tokens = t;
  ra.num_heads = c.num_heads;
  ra.num_kv_heads = c.num_kv_heads;
  ra.head_dim = c.head_dim;
  // After the plain skinny GEMV (it triggers at its start); not after the
  // norm-in forms (launched late at one row), FP8's or cuBLASLt's.
  ra.rotation_before_wait = qkv_in == QkvInput::kNormed && !L.qkv_f8.present() && gemv_supports(t, h);
  launch_qkv_rope_cache(ra, stream_);
  AttnArgs aa = paged_attention_args(l, i, kvd, q_.as<bf16>(), attn_.as<bf16>());
  aa.num_kv_heads = c.num_kv_heads;
  aa.head_dim = c.head_dim;
  aa.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (l.decode_only) {
    launch_attention_decode(aa, l.split_len, l.max_splits, attn_partial_.as<float>(), stream_);
  } else {
    launch_attention_prefill(aa, reinterpret_cast<const int32_t*>(dev + lay.items), lay.num_items, stream_);
  }
  if (o_residual_add) linear_residual_add(attn_.as<bf16>(), L.o_proj, L.o_proj_f8, L.o_bias, t, h, q);  // [t, h]
  else linear(attn_.as<bf16>(), L.o_proj, L.o_proj_f8, proj_.get(), t, h, q);                           // [t, h]
}

// proj_ = down(act), act = silu(x . gate^T) * (x . up^T), x = normed_ (or,
// x_quantized, the FP8 GEMM's activations the norm quantised for gate/up).
// At 1 or 2 rows one skinny kernel makes act with the activation fused
// (gemv.cuh), else the GEMM into gate_up_ [m, 2 inter] and silu_mul, which
// quantises act for down itself when down's FP8 GEMM takes it whole. On an
// H200 (Llama-3.1-8B) the fused skinny kernel won at batch 2 (4.77 against
// 4.90 ms a step) and lost from 4 (5.39 against 5.27 ms; at 8 6.88 against
// 5.47). Batch-invariant mode keeps the unfused pair.
void CudaBackend::dense_mlp(const CudaLayerWeights& L, bool x_quantized, int m, int inter, int h) {
  constexpr int kFusedMaxRows = 2;
  const bool fp8 = L.gate_up_f8.present();
  const bf16* x = normed_.as<bf16>();
  bf16* act = act_.as<bf16>();
  if (!x_quantized && !options_.batch_invariant && m <= kFusedMaxRows &&
      (fp8 ? fp8_gemv_supports(m, h) : gemv_supports(m, h))) {
    if (fp8) launch_fp8_gemv_silu_mul(x, L.gate_up_f8, act, m, inter, h, stream_);
    else launch_gemv_silu_mul(x, L.gate_up, act, m, inter, h, stream_);
    linear(act, L.down, L.down_f8, proj_.get(), m, h, inter);  // [m, h]
    return;
  }
  if (x_quantized) fp8_gemm_.run_quantized(L.gate_up_f8, gate_up_.as<bf16>(), m, 2 * inter, h, stream_);
  else linear(x, L.gate_up, L.gate_up_f8, gate_up_.get(), m, 2 * inter, h);  // [m, 2 inter]
  if (quantizes_ahead(L.down_f8, m, h, inter)) {
    const Fp8Gemm::QuantizedActs q = fp8_gemm_.quantized_acts();
    launch_silu_mul_fp8(gate_up_.as<bf16>(), q.bits, q.scales, m, inter, stream_);  // [m, inter] e4m3
    fp8_gemm_.run_quantized(L.down_f8, proj_.as<bf16>(), m, h, inter, stream_);     // [m, h]
    return;
  }
  launch_silu_mul(gate_up_.as<bf16>(), act, m, inter, stream_);  // [m, inter]
  linear(act, L.down, L.down_f8, proj_.get(), m, h, inter);      // [m, h]
}

bool CudaBackend::quantizes_ahead(const Fp8Weight& w8, int m, int n, int k) const {
  return w8.present() && fp8_gemm_.takes_quantized(w8, m, n, k);
}

void CudaBackend::add_rmsnorm(const bf16* add, const bf16* bias, const bf16* weight, bool quantized, int t) {
  const int h = config_.hidden_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  if (quantized) {
    const Fp8Gemm::QuantizedActs q = fp8_gemm_.quantized_acts();
    launch_add_rmsnorm_fp8(residual_.as<float>(), add, bias, weight, q.bits, q.scales, t, h, eps, stream_);
  } else {
    launch_add_rmsnorm(residual_.as<float>(), add, bias, weight, normed_.as<bf16>(), nullptr, t, h, eps, stream_);
  }
}

void CudaBackend::linear(const bf16* x, const bf16* w, const Fp8Weight& w8, void* y, int m, int n, int k) {
  if (w8.present()) fp8_gemm_.run(x, w8, static_cast<bf16*>(y), m, n, k, stream_);
  else gemm_.run(x, w, y, m, n, k, false, stream_);
}

void CudaBackend::linear_norm_in(const GemvNormIn& in, const bf16* w, const Fp8Weight& w8, bf16* y, int m, int n, int k,
                                 bool gated) {
  if (w8.present()) launch_fp8_gemv_norm_in(in, w8, y, m, n, k, gated, stream_);
  else launch_gemv_norm_in(in, w, y, m, n, k, gated, stream_);
}

void CudaBackend::linear_residual_add(const bf16* x, const bf16* w, const Fp8Weight& w8, const bf16* bias, int m, int n,
                                      int k) {
  if (w8.present()) launch_fp8_gemv_residual_add(x, w8, bias, residual_.as<float>(), m, n, k, stream_);
  else launch_gemv_residual_add(x, w, bias, residual_.as<float>(), m, n, k, stream_);
}

}  // namespace baton::cuda

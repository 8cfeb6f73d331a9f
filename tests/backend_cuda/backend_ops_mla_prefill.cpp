// backend-ops runner for MLA's expanded prefill (mla_prefill.h,
// launch_mla_expanded_attention, as the backend runs it): the plan, the
// gather of the sequences' latent rows from the paged cache, their expansion
// through kv_b_proj and the wgmma attention with qk head dim 192 / v head dim 128, against a CPU reference of
// the same math: K_nope and V per head from the cached latent rows (rounded
// to bf16 as the GPU stores them), causal softmax attention in fp32.
#include <algorithm>
#include <cmath>

#include "backend/cuda/gemm.h"
#include "backend/cuda/mla_prefill.h"
#include "backend_ops.h"

namespace baton::cuda::ops {
namespace {

using testing::download_bf16;
using testing::poisoned_bf16;
using testing::random_bf16_values;
using testing::round_bf16;
using testing::upload;
using testing::upload_bf16;

constexpr int kNope = 128, kRope = 64, kV = 128, kQk = kNope + kRope;

// The CPU reference: out [T, nh, kV] of q [T, nh, kQk] over the batch's cached latent rows.
std::vector<float> expanded_reference(const MlaExpandedShape& s, const Batch& b, const PagedCache& cache, int layer,
                                      const std::vector<float>& q, const std::vector<float>& kv_b, float scale) {
  const int nh = s.num_heads, rank = s.kv_lora_rank, cols = nh * (kNope + kV);
  const int64_t token_elems = cache.kv.token_elems;
  std::vector<float> out(static_cast<size_t>(b.num_tokens) * nh * kV);
  for (size_t si = 0; si + 1 < b.query_start.size(); ++si) {
    const int len = b.seq_lens[si], q0 = b.query_start[si], q_len = b.query_start[si + 1] - q0, ctx = len - q_len;
    std::vector<const float*> rows(len);
    for (int j = 0; j < len; ++j) {
      const int block = b.block_tables[si * b.max_blocks_per_seq + j / s.block_size];
      rows[j] = cache.host.data() + block * cache.kv.block_elems + layer * cache.kv.layer_block_elems +
                (j % s.block_size) * token_elems;
    }
    std::vector<float> kv(static_cast<size_t>(len) * cols);  // [len, nh, nope + v], bf16-rounded
    for (int j = 0; j < len; ++j)
      for (int c = 0; c < cols; ++c) {
        double acc = 0.0;
        for (int r = 0; r < rank; ++r) acc += static_cast<double>(rows[j][r]) * kv_b[static_cast<size_t>(c) * rank + r];
        kv[static_cast<size_t>(j) * cols + c] = round_bf16(static_cast<float>(acc));
      }
    std::vector<double> p(len);
    for (int i = 0; i < q_len; ++i)
      for (int h = 0; h < nh; ++h) {
        const float* qi = q.data() + (static_cast<size_t>(q0 + i) * nh + h) * kQk;
        const int keys = ctx + i + 1;
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < keys; ++j) {
          const float* k = kv.data() + static_cast<size_t>(j) * cols + h * (kNope + kV);
          double dot = 0.0;
          for (int d = 0; d < kNope; ++d) dot += static_cast<double>(qi[d]) * k[d];
          for (int d = 0; d < kRope; ++d) dot += static_cast<double>(qi[kNope + d]) * rows[j][rank + d];
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        for (int j = 0; j < keys; ++j) sum += (p[j] = std::exp(p[j] - mx));
        float* o = out.data() + (static_cast<size_t>(q0 + i) * nh + h) * kV;
        for (int d = 0; d < kV; ++d) {
          double acc = 0.0;
          for (int j = 0; j < keys; ++j) acc += p[j] * kv[static_cast<size_t>(j) * cols + h * (kNope + kV) + kNope + d];
          o[d] = static_cast<float>(acc / sum);
        }
      }
  }
  return out;
}

std::vector<Check> run_mla_expanded(const MlaExpandedShape& s, std::mt19937& rng) {
  const int layers = 2, layer = 1, nh = s.num_heads, rank = s.kv_lora_rank, latent = rank + kRope;
  const int cols = nh * (kNope + kV);
  const Batch b = make_batch(s.q_lens, s.ctx_lens, s.block_size, rng);
  PagedCache cache = make_paged_cache(
      KvLayout{layers, 1, latent, s.block_size, b.total_blocks + 3, DType::kBF16, rank, kRope}, rng);
  const auto q = random_bf16_values(static_cast<size_t>(b.num_tokens) * nh * kQk, 1.0f, rng);
  const auto kv_b = random_bf16_values(static_cast<size_t>(cols) * rank, 1.0f / std::sqrt(float(rank)), rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(kQk));
  int total_keys = 0;
  for (int len : b.seq_lens) total_keys += len;
  const int seqs = static_cast<int>(b.seq_lens.size());

  auto dq = upload_bf16(q);
  auto dkv_b = upload_bf16(kv_b);
  const size_t out_elems = static_cast<size_t>(b.num_tokens) * nh * kV;
  auto dout = poisoned_bf16(out_elems);
  const DeviceBatch db = upload_batch(b);
  DeviceBuffer plan, lat, kv;
  BATON_CHECK_OK(plan.allocate(size_t{4} * mla_expanded_plan_ints(b.num_tokens, seqs)));
  BATON_CHECK_OK(lat.allocate(static_cast<size_t>(total_keys) * latent * 2));
  BATON_CHECK_OK(kv.allocate(static_cast<size_t>(total_keys) * cols * 2));
  Gemm gemm;
  BATON_CHECK_OK(gemm.init(8u << 20));
  MlaExpandedStep st;
  st.q = dq.as<bf16>();
  st.out = dout.as<bf16>();
  st.kv = cache.kv;
  st.layer = layer;
  st.query_start = db.query_start.as<int32_t>();
  st.seq_lens = db.seq_lens.as<int32_t>();
  st.block_tables = db.block_tables.as<int32_t>();
  st.max_blocks_per_seq = b.max_blocks_per_seq;
  st.num_seqs = seqs;
  st.num_tokens = b.num_tokens;
  st.total_keys = total_keys;
  st.kv_b = dkv_b.as<bf16>();
  st.num_heads = nh;
  st.kv_lora_rank = rank;
  st.scale = scale;
  st.latent_rows = lat.as<bf16>();
  st.kv_rows = kv.as<bf16>();
  st.plan = plan.as<int32_t>();
  launch_mla_expanded_attention(st, gemm, nullptr);
  const auto out = download_bf16(dout, out_elems);
  return {compare("out", out, expanded_reference(s, b, cache, layer, q, kv_b, scale), kTolBf16)};
}

}  // namespace

OpCase mla_expanded_prefill_case(const MlaExpandedShape& s) {
  const std::string shape = "rank" + std::to_string(s.kv_lora_rank) + " nh" + std::to_string(s.num_heads) + " bs" +
                            std::to_string(s.block_size) + " q" + join(s.q_lens) + " ctx" + join(s.ctx_lens);
  return make_case("mla_expanded_prefill", shape, s, run_mla_expanded);
}

}  // namespace baton::cuda::ops

// Every CUDA op against the CPU reference ops (backend/cpu/cpu_ops.h) on fresh
// random inputs; bf16 storage, so relative L2 errors up to 1e-2 (METHOD.md).
// Outputs are poisoned with NaN first so unwritten elements fail.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "cuda_test_util.h"

namespace baton::cuda {
namespace {

using namespace baton::cuda::testing;

constexpr double kTol = 1e-2;

TEST(CudaOps, EmbeddingMatchesCpu) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(1);
  const int vocab = 300, hidden = 96, n = 37;
  auto table = random_bf16_values(vocab * hidden, 1.0f, rng);
  std::vector<int32_t> ids(n);
  for (auto& i : ids) i = rng() % vocab;
  auto dt = upload_bf16(table);
  auto di = upload(ids);
  auto dout = poisoned_f32(n * hidden);
  launch_embedding(di.as<int32_t>(), dt.as<bf16>(), dout.as<float>(), n, hidden, vocab, nullptr);
  std::vector<float> ref(n * hidden);
  embedding(table.data(), hidden, ids.data(), n, ref.data());
  EXPECT_EQ(rel_l2(download<float>(dout, n * hidden), ref), 0.0);
}

TEST(CudaOps, AddRmsNormMatchesCpu) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(2);
  for (int hidden : {64, 1000, 1002, 4096}) {  // 1002: the scalar path
    const int n = 19;
    auto res = random_bf16_values(n * hidden, 2.0f, rng);
    auto add = random_bf16_values(n * hidden, 2.0f, rng);
    auto w = random_bf16_values(hidden, 1.5f, rng);
    auto dres = upload(res);
    auto dadd = upload_bf16(add);
    auto dw = upload_bf16(w);
    auto dout = poisoned_bf16(n * hidden);
    launch_add_rmsnorm(dres.as<float>(), dadd.as<bf16>(), nullptr, dw.as<bf16>(), dout.as<bf16>(), nullptr, n,
                       hidden, 1e-5f, nullptr);
    std::vector<float> x(n * hidden), ref(n * hidden);
    for (size_t i = 0; i < x.size(); ++i) x[i] = res[i] + add[i];
    rmsnorm(x.data(), w.data(), n, hidden, 1e-5f, ref.data());
    EXPECT_LT(rel_l2(download_bf16(dout, n * hidden), ref), kTol) << hidden;
    EXPECT_LT(rel_l2(download<float>(dres, n * hidden), x), 1e-6) << "residual updated";
    // Gathered rows (the final norm at sampling positions) leave the residual alone.
    std::vector<int32_t> rows = {3, 0, 18};
    auto drows = upload(rows);
    auto dout2 = poisoned_bf16(3 * hidden);
    launch_add_rmsnorm(dres.as<float>(), nullptr, nullptr, dw.as<bf16>(), dout2.as<bf16>(), drows.as<int32_t>(), 3,
                       hidden, 1e-5f, nullptr);
    std::vector<float> ref2(3 * hidden);
    for (int r = 0; r < 3; ++r) rmsnorm(x.data() + rows[r] * hidden, w.data(), 1, hidden, 1e-5f, ref2.data() + r * hidden);
    EXPECT_LT(rel_l2(download_bf16(dout2, 3 * hidden), ref2), kTol);
  }
}

TEST(CudaOps, SiluMulMatchesCpu) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(3);
  const int n = 13, inter = 700;
  auto gu = random_bf16_values(n * 2 * inter, 4.0f, rng);
  auto d = upload_bf16(gu);
  auto dout = poisoned_bf16(n * inter);
  launch_silu_mul(d.as<bf16>(), dout.as<bf16>(), n, inter, nullptr);
  std::vector<float> ref(n * inter);
  silu_mul(gu.data(), n, inter, ref.data());
  EXPECT_LT(rel_l2(download_bf16(dout, n * inter), ref), kTol);
}

TEST(CudaOps, GemmMatchesCpu) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(4);
  Gemm gemm;
  ASSERT_TRUE(gemm.init().is_ok());
  for (auto [m, n, k] : {std::tuple{1, 512, 256}, std::tuple{77, 1000, 320}, std::tuple{300, 64, 4096}}) {
    auto x = random_bf16_values(m * k, 1.0f, rng);
    auto w = random_bf16_values(n * k, 0.1f, rng);
    auto dx = upload_bf16(x);
    auto dw = upload_bf16(w);
    auto dy = poisoned_bf16(m * n);
    auto dyf = poisoned_f32(m * n);
    gemm.run(dx.as<bf16>(), dw.as<bf16>(), dy.get(), m, n, k, false, nullptr);
    gemm.run(dx.as<bf16>(), dw.as<bf16>(), dyf.get(), m, n, k, true, nullptr);
    std::vector<float> ref(m * n);
    matmul(x.data(), m, k, w.data(), n, nullptr, ref.data(), nullptr);
    EXPECT_LT(rel_l2(download_bf16(dy, m * n), ref), kTol) << m << "x" << n << "x" << k;
    EXPECT_LT(rel_l2(download<float>(dyf, m * n), ref), 1e-4) << m << "x" << n << "x" << k;
  }
}

// Algorithms are chosen once per bucket of m and reused for the bucket's other
// sizes: every size still matches the CPU (the reused choice is checked for
// each shape), whichever size of the bucket came first.
TEST(CudaOps, GemmBucketsShareAlgorithmsAndStayCorrect) {
  EXPECT_EQ(gemm_m_bucket(1), 1);
  EXPECT_EQ(gemm_m_bucket(64), 64);
  EXPECT_EQ(gemm_m_bucket(65), 72);      // 64 <= m < 128: steps of 8
  EXPECT_EQ(gemm_m_bucket(1025), 1152);  // 1024 <= m < 2048: steps of 128
  EXPECT_EQ(gemm_m_bucket(8192), 8192);
  EXPECT_EQ(gemm_m_bucket(8193), 9216);
  for (int m = 65; m < 20000; m += 97) {
    int b = gemm_m_bucket(m);
    EXPECT_GE(b, m);
    EXPECT_LE(b - m, m / 8) << m;
  }
  BATON_REQUIRE_GPU();
  std::mt19937 rng(5);
  Gemm gemm;
  ASSERT_TRUE(gemm.init().is_ok());
  const int n = 576, k = 1024;
  auto w = random_bf16_values(n * k, 0.1f, rng);
  auto dw = upload_bf16(w);
  for (int m : {1100, 1025, 1152, 1101, 3, 7}) {
    auto x = random_bf16_values(m * k, 1.0f, rng);
    auto dx = upload_bf16(x);
    auto dy = poisoned_bf16(m * n);
    gemm.run(dx.as<bf16>(), dw.as<bf16>(), dy.get(), m, n, k, false, nullptr);
    std::vector<float> ref(m * n);
    matmul(x.data(), m, k, w.data(), n, nullptr, ref.data(), nullptr);
    EXPECT_LT(rel_l2(download_bf16(dy, m * n), ref), kTol) << m;
  }
}

TEST(CudaOps, SkinnyGemvMatchesCpu) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(9);
  for (int m : {1, 2, 3, 5, 8}) {
    for (auto [n, k] : {std::pair{1001, 4096}, std::pair{64, 14336}, std::pair{3, 40}}) {
      auto x = random_bf16_values(m * k, 1.0f, rng);
      auto w = random_bf16_values(n * k, 0.1f, rng);
      auto dx = upload_bf16(x), dw = upload_bf16(w);
      auto dy = poisoned_bf16(m * n);
      auto dyf = poisoned_f32(m * n);
      launch_gemv(dx.as<bf16>(), dw.as<bf16>(), dy.get(), m, n, k, false, nullptr);
      launch_gemv(dx.as<bf16>(), dw.as<bf16>(), dyf.get(), m, n, k, true, nullptr);
      std::vector<float> ref(m * n);
      matmul(x.data(), m, k, w.data(), n, nullptr, ref.data(), nullptr);
      EXPECT_LT(rel_l2(download_bf16(dy, m * n), ref), kTol) << m << "x" << n << "x" << k;
      EXPECT_LT(rel_l2(download<float>(dyf, m * n), ref), 1e-4) << m << "x" << n << "x" << k;
    }
  }
}

TEST(CudaOps, RowInvariantGemmMatchesCpuAndIgnoresBatch) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(8);
  const int m = 300, n = 1000, k = 520;
  auto x = random_bf16_values(m * k, 1.0f, rng);
  auto w = random_bf16_values(n * k, 0.1f, rng);
  auto dx = upload_bf16(x);
  auto dw = upload_bf16(w);
  auto dy = poisoned_f32(m * n);
  launch_gemm_row_invariant(dx.as<bf16>(), dw.as<bf16>(), dy.get(), m, n, k, true, nullptr);
  std::vector<float> ref(m * n);
  matmul(x.data(), m, k, w.data(), n, nullptr, ref.data(), nullptr);
  auto all = download<float>(dy, m * n);
  EXPECT_LT(rel_l2(all, ref), 1e-4);
  // Row 137 alone gives bit-identical results.
  std::vector<float> row(x.begin() + 137 * k, x.begin() + 138 * k);
  auto dr = upload_bf16(row);
  auto dy1 = poisoned_f32(n);
  launch_gemm_row_invariant(dr.as<bf16>(), dw.as<bf16>(), dy1.get(), 1, n, k, true, nullptr);
  auto one = download<float>(dy1, n);
  EXPECT_TRUE(std::equal(one.begin(), one.end(), all.begin() + 137 * n));
  auto dyb = poisoned_bf16(m * n);
  launch_gemm_row_invariant(dx.as<bf16>(), dw.as<bf16>(), dyb.get(), m, n, k, false, nullptr);
  EXPECT_LT(rel_l2(download_bf16(dyb, m * n), ref), kTol);
}

// A paged KV cache with random block assignment, shared by the attention tests.
struct PagedSetup {
  KvLayout layout;
  std::vector<float> cache;  // fp32 copy of the bf16 cache
  DeviceBuffer dcache;
  KvDev kvd;
};

PagedSetup make_cache(int layers, int nkv, int hd, int bs, int blocks, std::mt19937& rng) {
  PagedSetup p;
  p.layout = KvLayout{layers, nkv, hd, bs, blocks, DType::kBF16};
  p.cache = random_bf16_values(p.layout.block_elems() * blocks, 1.0f, rng);
  p.dcache = upload_bf16(p.cache);
  p.kvd.base = p.dcache.as<bf16>();
  p.kvd.block_elems = p.layout.block_elems();
  p.kvd.layer_block_elems = p.layout.layer_block_elems();
  p.kvd.half_elems = p.layout.half_layer_block_elems();
  p.kvd.token_elems = p.layout.token_elems();
  p.kvd.block_size = bs;
  return p;
}

TEST(CudaOps, QkvRopeCacheMatchesCpu) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(5);
  for (bool qwen3 : {false, true}) {
    const int nh = 8, nkv = 2, hd = 64, n = 21, bs = 16, blocks = 8, layers = 2, layer = 1;
    RopeScaling sc;
    sc.rope_type = "llama3";
    sc.factor = 8.0;
    sc.original_max_position_embeddings = 64;
    auto inv = rope_inv_freq(hd, 500000.0, qwen3 ? std::nullopt : std::optional<RopeScaling>(sc));
    const int width = (nh + 2 * nkv) * hd;
    auto qkv = random_bf16_values(n * width, 2.0f, rng);
    auto bias = random_bf16_values(width, 0.5f, rng);
    auto qn = random_bf16_values(hd, 1.5f, rng), kn = random_bf16_values(hd, 1.5f, rng);
    std::vector<int32_t> pos(n);
    std::vector<int64_t> slots(n);
    std::vector<int> perm(blocks * bs);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int t = 0; t < n; ++t) {
      pos[t] = rng() % 3000;
      slots[t] = perm[t];
    }
    PagedSetup ps = make_cache(layers, nkv, hd, bs, blocks, rng);
    auto dqkv = upload_bf16(qkv);
    auto dbias = upload_bf16(bias);
    auto dqn = upload_bf16(qn), dkn = upload_bf16(kn);
    auto dpos = upload(pos);
    auto dslots = upload(slots);
    auto dinv = upload(inv);
    auto dq = poisoned_bf16(n * nh * hd);
    QkvRopeArgs a;
    a.qkv = dqkv.as<bf16>();
    a.bias = qwen3 ? nullptr : dbias.as<bf16>();
    a.q_norm = qwen3 ? dqn.as<bf16>() : nullptr;
    a.k_norm = qwen3 ? dkn.as<bf16>() : nullptr;
    a.eps = 1e-6f;
    a.positions = dpos.as<int32_t>();
    a.slot_mapping = dslots.as<int64_t>();
    a.inv_freq = dinv.as<float>();
    a.q_out = dq.as<bf16>();
    a.kv = ps.kvd;
    a.layer = layer;
    a.num_tokens = n;
    a.num_heads = nh;
    a.num_kv_heads = nkv;
    a.head_dim = hd;
    launch_qkv_rope_cache(a, nullptr);
    // CPU: bias, split, q/k norm, rope, write_kv.
    std::vector<float> q(n * nh * hd), k(n * nkv * hd), v(n * nkv * hd);
    for (int t = 0; t < n; ++t)
      for (int i = 0; i < width; ++i) {
        float x = qkv[t * width + i] + (qwen3 ? 0.0f : bias[i]);
        if (i < nh * hd) q[t * nh * hd + i] = x;
        else if (i < (nh + nkv) * hd) k[t * nkv * hd + i - nh * hd] = x;
        else v[t * nkv * hd + i - (nh + nkv) * hd] = x;
      }
    if (qwen3) {
      rmsnorm(q.data(), qn.data(), n * nh, hd, 1e-6f, q.data());
      rmsnorm(k.data(), kn.data(), n * nkv, hd, 1e-6f, k.data());
    }
    apply_rope(q.data(), n, nh, hd, pos.data(), inv.data());
    apply_rope(k.data(), n, nkv, hd, pos.data(), inv.data());
    std::vector<float> ref_cache = ps.cache;
    write_kv(k.data(), v.data(), slots.data(), n, ps.layout, layer, ref_cache.data());
    EXPECT_LT(rel_l2(download_bf16(dq, n * nh * hd), q), kTol) << "q, qwen3=" << qwen3;
    EXPECT_LT(rel_l2(download_bf16(ps.dcache, ref_cache.size()), ref_cache), kTol) << "cache, qwen3=" << qwen3;
  }
}

// Runs prefill (varlen + cached context) and decode attention against the CPU.
void check_attention(int nh, int nkv, int hd, const std::vector<int>& q_lens, const std::vector<int>& ctx_lens,
                     bool decode, uint32_t seed, int variant = -1) {
  std::mt19937 rng(seed);
  const int bs = 16, layers = 2, layer = 1, s = static_cast<int>(q_lens.size());
  int max_len = 0, total_blocks = 0, n = 0;
  for (int i = 0; i < s; ++i) {
    max_len = std::max(max_len, q_lens[i] + ctx_lens[i]);
    total_blocks += (q_lens[i] + ctx_lens[i] + bs - 1) / bs;
    n += q_lens[i];
  }
  const int mbps = (max_len + bs - 1) / bs;
  PagedSetup ps = make_cache(layers, nkv, hd, bs, total_blocks + 3, rng);
  std::vector<int> perm(total_blocks + 3);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> qs = {0}, sl, bt(s * mbps, -1), pos, seq_of;
  int next = 0;
  for (int i = 0; i < s; ++i) {
    const int len = q_lens[i] + ctx_lens[i];
    for (int b = 0; b < (len + bs - 1) / bs; ++b) bt[i * mbps + b] = perm[next++];
    for (int j = 0; j < q_lens[i]; ++j) {
      pos.push_back(ctx_lens[i] + j);
      seq_of.push_back(i);
    }
    qs.push_back(qs.back() + q_lens[i]);
    sl.push_back(len);
  }
  auto q = random_bf16_values(n * nh * hd, 2.0f, rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  auto dq = upload_bf16(q);
  auto dout = poisoned_bf16(n * nh * hd);
  auto dqs = upload(qs), dsl = upload(sl), dbt = upload(bt);
  AttnArgs a;
  a.q = dq.as<bf16>();
  a.out = dout.as<bf16>();
  a.kv = ps.kvd;
  a.layer = layer;
  a.query_start = dqs.as<int32_t>();
  a.seq_lens = dsl.as<int32_t>();
  a.block_tables = dbt.as<int32_t>();
  a.max_blocks_per_seq = mbps;
  a.num_seqs = s;
  a.num_heads = nh;
  a.num_kv_heads = nkv;
  a.head_dim = hd;
  a.scale = scale;
  a.prefill_variant = variant;
  DeviceBuffer partial;
  if (decode) {
    const int split = 128, max_splits = (max_len + split - 1) / split;
    BATON_CHECK_OK(partial.allocate(static_cast<size_t>(s) * nh * max_splits * (hd + 2) * 4));
    launch_attention_decode(a, split, max_splits, partial.as<float>(), nullptr);
  } else {
    const int group = nh / nkv, rpt = attention_rows_per_tile();
    std::vector<int32_t> items;
    for (int i = 0; i < s; ++i)
      for (int tile = 0; tile < (q_lens[i] * group + rpt - 1) / rpt; ++tile) {
        items.push_back(i);
        items.push_back(tile * rpt);
      }
    auto ditems = upload(items);
    launch_attention_prefill(a, ditems.as<int32_t>(), static_cast<int>(items.size() / 2), nullptr);
    BATON_CUDA_CHECK(cudaDeviceSynchronize());
  }
  PagedAttentionArgs c;
  c.q = q.data();
  c.num_tokens = n;
  c.num_heads = nh;
  c.positions = pos.data();
  c.seq_of_token = seq_of.data();
  c.block_tables = bt.data();
  c.max_blocks_per_seq = mbps;
  c.kv_cache = ps.cache.data();
  c.layout = ps.layout;
  c.layer = layer;
  c.scale = scale;
  std::vector<float> ref(n * nh * hd);
  paged_attention(c, ref.data(), nullptr);
  EXPECT_LT(rel_l2(download_bf16(dout, n * nh * hd), ref), kTol)
      << "nh " << nh << " nkv " << nkv << " hd " << hd << (decode ? " decode" : " prefill");
}

TEST(CudaOps, PrefillAttentionVarlenWithCachedContext) {
  BATON_REQUIRE_GPU();
  for (int hd : {16, 32, 64, 128}) {
    check_attention(8, 2, hd, {1, 37, 130, 5}, {0, 0, 200, 77}, false, 10 + hd);
    check_attention(4, 4, hd, {64, 17}, {16, 3}, false, 20 + hd);
  }
  check_attention(32, 8, 128, {300, 1, 129}, {700, 1000, 0}, false, 99);
  for (int variant : {0, 1}) {  // mma.sync kernel: q in registers / in shared memory
    check_attention(32, 8, 128, {200, 3}, {100, 60}, false, 100 + variant, variant);
    check_attention(8, 8, 64, {130, 1}, {0, 77}, false, 102 + variant, variant);
  }
}

// The Hopper wgmma kernel (head_dim 128, the default there): GQA groups 1, 4
// and 8, tiles that end mid-block and mid-sequence, long causal prompts,
// chunked prefill after a cached prefix, one-token rows in a mixed batch.
void check_wgmma_variant(int variant) {
  SCOPED_TRACE(::testing::Message() << "prefill_variant " << variant);
  check_attention(32, 8, 128, {1000}, {0}, false, 200 + 10 * variant, variant);
  check_attention(32, 8, 128, {77, 1, 300, 16}, {0, 5, 1234, 64}, false, 201 + 10 * variant, variant);
  check_attention(8, 8, 128, {129, 33}, {0, 190}, false, 202 + 10 * variant, variant);
  check_attention(64, 8, 128, {65, 200}, {3, 0}, false, 203 + 10 * variant, variant);
  check_attention(16, 2, 128, {1, 1, 1}, {0, 63, 64}, false, 204 + 10 * variant, variant);
}

TEST(CudaOps, PrefillAttentionWgmmaMatchesCpu) {
  BATON_REQUIRE_GPU();
  for (int variant : {2, 3}) check_wgmma_variant(variant);  // q in shared memory (the default) / in registers
}

// The warp-specialised forms (attention_wgmma_ws.cu): a producer warpgroup and
// mbarriers, + ping-pong, + 128-key tiles. A test of their own, so that
// scripts/gpu-check.sh can run it first under a timeout (a barrier bug hangs).
TEST(CudaOps, PrefillAttentionWarpSpecializedMatchesCpu) {
  BATON_REQUIRE_GPU();
  for (int variant : {4, 5, 6}) check_wgmma_variant(variant);
}

TEST(CudaOps, DecodeAttentionSplitOverContext) {
  BATON_REQUIRE_GPU();
  for (int hd : {16, 32, 64, 128}) {
    check_attention(8, 2, hd, {1, 1, 1, 1}, {0, 15, 300, 1023}, true, 30 + hd);
    check_attention(16, 1, hd, {1, 1}, {64, 513}, true, 40 + hd);
  }
  check_attention(32, 8, 128, std::vector<int>(40, 1), std::vector<int>(40, 2047), true, 77);
}

TEST(CudaOps, MoeRouteMatchesCpu) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(6);
  for (bool renorm : {false, true}) {
    const int n = 50, e = 128, k = 8;
    std::uniform_real_distribution<float> d(-3.0f, 3.0f);
    std::vector<float> logits(n * e);
    for (auto& x : logits) x = d(rng);
    auto dl = upload(logits);
    auto dids = upload(std::vector<int32_t>(n * k, -1));
    auto dw = poisoned_f32(n * k);
    launch_moe_topk(dl.as<float>(), n, e, k, renorm, dids.as<int32_t>(), dw.as<float>(), nullptr);
    std::vector<int32_t> ids(n * k);
    std::vector<float> w(n * k);
    moe_route(logits.data(), n, e, k, renorm, ids.data(), w.data());
    EXPECT_EQ(download<int32_t>(dids, n * k), ids);
    EXPECT_LT(rel_l2(download<float>(dw, n * k), w), 1e-5);
  }
}

TEST(CudaOps, MoeGroupedExpertsMatchCpu) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(7);
  for (auto [n, e, k, h, mi] : {std::tuple{1, 8, 2, 64, 32}, std::tuple{70, 16, 4, 256, 96}, std::tuple{300, 128, 8, 512, 64},
                                         std::tuple{2000, 8, 2, 256, 96}}) {  // the last: 128x128 tiles
    std::vector<int32_t> ids(n * k);
    std::vector<float> w(n * k);
    for (int t = 0; t < n; ++t) {
      std::vector<int> all(e);
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng);
      for (int j = 0; j < k; ++j) {
        ids[t * k + j] = all[j];
        w[t * k + j] = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
      }
    }
    auto x = random_bf16_values(n * h, 1.0f, rng);
    auto wgu = random_bf16_values(static_cast<size_t>(e) * 2 * mi * h, 0.1f, rng);
    auto wd = random_bf16_values(static_cast<size_t>(e) * h * mi, 0.1f, rng);
    auto dids = upload(ids), dw = upload(w), dx = upload_bf16(x), dgu = upload_bf16(wgu), dwd = upload_bf16(wd);
    auto doff = upload(std::vector<int32_t>(e + 1, 0));
    auto dsorted = upload(std::vector<int32_t>(n * k, 0)), dpos = upload(std::vector<int32_t>(n * k, 0));
    auto dgu_out = poisoned_bf16(n * k * 2 * mi), dact = poisoned_bf16(n * k * mi), deo = poisoned_bf16(n * k * h);
    auto dout = poisoned_bf16(n * h);
    launch_moe_align(dids.as<int32_t>(), n * k, e, doff.as<int32_t>(), dsorted.as<int32_t>(), dpos.as<int32_t>(), nullptr);
    launch_grouped_gemm(dx.as<bf16>(), dsorted.as<int32_t>(), k, dgu.as<bf16>(), doff.as<int32_t>(), e, n * k, 2 * mi,
                        h, dgu_out.as<bf16>(), nullptr);
    launch_silu_mul(dgu_out.as<bf16>(), dact.as<bf16>(), n * k, mi, nullptr);
    launch_grouped_gemm(dact.as<bf16>(), nullptr, 1, dwd.as<bf16>(), doff.as<int32_t>(), e, n * k, h, mi,
                        deo.as<bf16>(), nullptr);
    launch_moe_combine(deo.as<bf16>(), dpos.as<int32_t>(), dw.as<float>(), n, k, h, dout.as<bf16>(), nullptr);
    std::vector<float> ref(n * h, 0.0f), gu(2 * mi), act(mi), y(h);
    for (int t = 0; t < n; ++t)
      for (int j = 0; j < k; ++j) {
        const int ex = ids[t * k + j];
        matmul(x.data() + t * h, 1, h, wgu.data() + static_cast<size_t>(ex) * 2 * mi * h, 2 * mi, nullptr, gu.data(), nullptr);
        silu_mul(gu.data(), 1, mi, act.data());
        matmul(act.data(), 1, mi, wd.data() + static_cast<size_t>(ex) * h * mi, h, nullptr, y.data(), nullptr);
        for (int i = 0; i < h; ++i) ref[t * h + i] += w[t * k + j] * y[i];
      }
    EXPECT_LT(rel_l2(download_bf16(dout, n * h), ref), kTol) << n << " tokens, " << e << " experts";
    auto off = download<int32_t>(doff, e + 1);
    EXPECT_EQ(off[e], n * k);
  }
}

}  // namespace
}  // namespace baton::cuda

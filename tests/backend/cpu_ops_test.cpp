// The CPU operators against naive double-precision versions and hand-worked values.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "backend/cpu/cpu_ops.h"
#include "common/thread_pool.h"

namespace baton {
namespace {

std::vector<float> random_vec(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(CpuOps, DotMatchesNaive) {
  std::mt19937 rng(1);
  for (int n : {0, 1, 7, 8, 15, 16, 17, 33, 100}) {
    auto a = random_vec(n, rng), b = random_vec(n, rng);
    double ref = 0.0;
    for (int i = 0; i < n; ++i) ref += static_cast<double>(a[i]) * b[i];
    EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 1e-4) << "n=" << n;
  }
}

void check_matmul(int64_t rows, int64_t in, int64_t out, bool bias, ThreadPool* pool) {
  std::mt19937 rng(static_cast<unsigned>(rows * 1000 + in * 10 + out));
  auto x = random_vec(rows * in, rng), w = random_vec(out * in, rng), b = random_vec(out, rng);
  std::vector<float> y(rows * out, -999.0f);
  matmul(x.data(), rows, in, w.data(), out, bias ? b.data() : nullptr, y.data(), pool);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double ref = bias ? b[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) ref += static_cast<double>(x[t * in + i]) * w[o * in + i];
      ASSERT_NEAR(y[t * out + o], ref, 1e-4 * std::sqrt(static_cast<double>(in)) + 1e-5)
          << rows << "x" << in << "x" << out << " at " << t << "," << o;
    }
}

TEST(CpuOps, MatmulMatchesNaiveOnOddShapes) {
  ThreadPool pool(3);
  check_matmul(1, 1, 1, false, nullptr);
  check_matmul(5, 37, 11, true, nullptr);
  check_matmul(5, 37, 11, true, &pool);
  check_matmul(1, 256, 130, false, &pool);  // decode-shaped
  check_matmul(70, 300, 133, true, &pool);  // several token blocks and threads
  check_matmul(3, 2000, 9, false, &pool);   // token block smaller than the rows
}

void check_matmul_packed(int64_t rows, int64_t in, int64_t out, bool bias, ThreadPool* pool) {
  std::mt19937 rng(static_cast<unsigned>(rows * 1000 + in * 10 + out + 1));
  auto x = random_vec(rows * in, rng), w = random_vec(out * in, rng), b = random_vec(out, rng);
  const PackedWeight pw = pack_weight(w.data(), out, in);
  ASSERT_EQ(pw.num_panels(), (out + 15) / 16);
  std::vector<float> y(rows * out, -999.0f);
  matmul_packed(x.data(), rows, pw, bias ? b.data() : nullptr, y.data(), pool);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double ref = bias ? b[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) ref += static_cast<double>(x[t * in + i]) * w[o * in + i];
      ASSERT_NEAR(y[t * out + o], ref, 1e-4 * std::sqrt(static_cast<double>(in)) + 1e-5)
          << rows << "x" << in << "x" << out << " at " << t << "," << o;
    }
  // Batch invariance: each row computed alone gives the same bits.
  std::vector<float> alone(out);
  for (int64_t t = 0; t < rows; t += std::max<int64_t>(1, rows / 5)) {
    matmul_packed(x.data() + t * in, 1, pw, bias ? b.data() : nullptr, alone.data(), nullptr);
    for (int64_t o = 0; o < out; ++o) ASSERT_EQ(alone[o], y[t * out + o]) << "row " << t << " out " << o;
  }
}

TEST(CpuOps, MatmulPackedMatchesNaiveAndIsBatchInvariant) {
  ThreadPool pool(3);
  check_matmul_packed(1, 1, 1, false, nullptr);
  check_matmul_packed(5, 37, 11, true, nullptr);
  check_matmul_packed(7, 37, 35, true, &pool);
  check_matmul_packed(1, 256, 130, false, &pool);
  check_matmul_packed(70, 300, 133, true, &pool);
  check_matmul_packed(13, 2000, 40, false, &pool);
}

TEST(CpuOps, EmbeddingFromRowMajorAndPackedTables) {
  std::mt19937 rng(4);
  constexpr int64_t kRows = 37, kDim = 12;
  auto table = random_vec(kRows * kDim, rng);
  const PackedWeight packed = pack_weight(table.data(), kRows, kDim);
  const std::vector<int32_t> ids = {0, 36, 17, 16, 15, 17};
  std::vector<float> a(ids.size() * kDim), b(ids.size() * kDim);
  embedding(table.data(), kDim, ids.data(), static_cast<int64_t>(ids.size()), a.data());
  embedding_packed(packed, ids.data(), static_cast<int64_t>(ids.size()), b.data());
  EXPECT_EQ(a, b);
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t k = 0; k < kDim; ++k) ASSERT_EQ(a[t * kDim + k], table[ids[t] * kDim + k]);
}

TEST(CpuOps, RmsNormHandWorked) {
  // x = {3, 4}: mean square 12.5, rsqrt(12.5 + 0.5) = 1/sqrt(13).
  const float x[2] = {3.0f, 4.0f}, w[2] = {1.0f, 2.0f};
  float out[2];
  rmsnorm(x, w, 1, 2, 0.5f, out);
  EXPECT_NEAR(out[0], 3.0 / std::sqrt(13.0), 1e-6);
  EXPECT_NEAR(out[1], 8.0 / std::sqrt(13.0), 1e-6);
}

TEST(CpuOps, RopeInvFreqDefaultAndLlama3) {
  auto plain = rope_inv_freq(16, 500000.0, std::nullopt);
  ASSERT_EQ(plain.size(), 8u);
  EXPECT_FLOAT_EQ(plain[0], 1.0f);
  EXPECT_NEAR(plain[1], std::pow(500000.0, -2.0 / 16), 1e-7);
  EXPECT_NEAR(plain[7], std::pow(500000.0, -14.0 / 16), 1e-11);

  RopeScaling s{"llama3", 8.0, 1.0, 4.0, 64};
  auto scaled = rope_inv_freq(16, 500000.0, s);
  // Wavelength 2*pi < 16 (high-frequency): unchanged.
  EXPECT_FLOAT_EQ(scaled[0], plain[0]);
  // Wavelength > 64 (low-frequency): divided by the factor.
  EXPECT_NEAR(scaled[7], plain[7] / 8.0, 1e-12);
  // i = 1: wavelength 2*pi / 0.194 = 32.4 is medium: smooth interpolation.
  const double f = plain[1], wavelen = 2 * std::numbers::pi / f;
  ASSERT_GT(wavelen, 16.0);
  ASSERT_LT(wavelen, 64.0);
  const double smooth = (64.0 / wavelen - 1.0) / 3.0;
  EXPECT_NEAR(scaled[1], (1 - smooth) * f / 8 + smooth * f, 1e-7);
}

TEST(CpuOps, RopeRotatesHalvesAndKeepsNorms) {
  // head_dim 4, inv_freq {1, 0.5}, position 2: angles {2, 1}, pairs (0,2), (1,3).
  float x[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  const float inv[2] = {1.0f, 0.5f};
  const int32_t pos = 2;
  apply_rope(x, 1, 1, 4, &pos, inv);
  EXPECT_NEAR(x[0], 1 * std::cos(2.0) - 3 * std::sin(2.0), 1e-6);
  EXPECT_NEAR(x[2], 3 * std::cos(2.0) + 1 * std::sin(2.0), 1e-6);
  EXPECT_NEAR(x[1], 2 * std::cos(1.0) - 4 * std::sin(1.0), 1e-6);
  EXPECT_NEAR(x[3], 4 * std::cos(1.0) + 2 * std::sin(1.0), 1e-6);
  float y[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  const int32_t zero = 0;
  apply_rope(y, 1, 1, 4, &zero, inv);  // position 0 is the identity
  EXPECT_FLOAT_EQ(y[3], 4.0f);
}

TEST(CpuOps, SiluMul) {
  const float gate_up[4] = {0.0f, 2.0f, 5.0f, -3.0f};  // [1, 2 * 2]
  float out[2];
  silu_mul(gate_up, 1, 2, out);
  EXPECT_FLOAT_EQ(out[0], 0.0f);
  EXPECT_NEAR(out[1], 2.0 / (1 + std::exp(-2.0)) * -3.0, 1e-6);
}

TEST(CpuOps, MoeRouteSoftmaxTopKRenormalise) {
  // Softmax of {0, ln 2, ln 3, ln 4} = {0.1, 0.2, 0.3, 0.4}.
  const float logits[4] = {0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  int32_t ids[2];
  float w[2];
  moe_route(logits, 1, 4, 2, false, ids, w);
  EXPECT_EQ(ids[0], 3);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], 0.4, 1e-6);
  EXPECT_NEAR(w[1], 0.3, 1e-6);
  moe_route(logits, 1, 4, 2, true, ids, w);
  EXPECT_NEAR(w[0], 4.0 / 7, 1e-6);
  EXPECT_NEAR(w[1], 3.0 / 7, 1e-6);
}

// Paged attention over scattered blocks equals dense causal GQA attention.
TEST(CpuOps, PagedAttentionMatchesDenseCausal) {
  constexpr int kTokens = 21, kHeads = 4, kKvHeads = 2, kHeadDim = 8, kBlock = 4, kLayers = 2;
  std::mt19937 rng(5);
  KvLayout layout;
  layout.num_layers = kLayers;
  layout.num_kv_heads = kKvHeads;
  layout.head_dim = kHeadDim;
  layout.block_size = kBlock;
  layout.num_blocks = 12;
  std::vector<float> cache(layout.block_elems() * layout.num_blocks, 0.0f);
  const std::vector<int32_t> table = {9, 2, 7, 0, 11, 4};  // 6 blocks of 4 >= 21 tokens
  auto q = random_vec(kTokens * kHeads * kHeadDim, rng);
  auto k = random_vec(kTokens * kKvHeads * kHeadDim, rng);
  auto v = random_vec(kTokens * kKvHeads * kHeadDim, rng);
  std::vector<int32_t> positions(kTokens), seq(kTokens, 0);
  std::vector<int64_t> slots(kTokens);
  for (int t = 0; t < kTokens; ++t) {
    positions[t] = t;
    slots[t] = static_cast<int64_t>(table[t / kBlock]) * kBlock + t % kBlock;
  }
  write_kv(k.data(), v.data(), slots.data(), kTokens, layout, 1, cache.data());
  PagedAttentionArgs a;
  a.q = q.data();
  a.num_tokens = kTokens;
  a.num_heads = kHeads;
  a.positions = positions.data();
  a.seq_of_token = seq.data();
  a.block_tables = table.data();
  a.max_blocks_per_seq = static_cast<int>(table.size());
  a.kv_cache = cache.data();
  a.layout = layout;
  a.layer = 1;
  a.scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim));
  ThreadPool pool(2);
  std::vector<float> out(q.size());
  paged_attention(a, out.data(), &pool);
  for (int t = 0; t < kTokens; ++t)
    for (int h = 0; h < kHeads; ++h) {
      const int kvh = h / (kHeads / kKvHeads);
      std::vector<double> s(t + 1);
      double mx = -1e300, sum = 0.0;
      for (int p = 0; p <= t; ++p) {
        double d = 0.0;
        for (int i = 0; i < kHeadDim; ++i)
          d += static_cast<double>(q[(t * kHeads + h) * kHeadDim + i]) * k[(p * kKvHeads + kvh) * kHeadDim + i];
        s[p] = d * a.scale;
        mx = std::max(mx, s[p]);
      }
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int i = 0; i < kHeadDim; ++i) {
        double ref = 0.0;
        for (int p = 0; p <= t; ++p) ref += s[p] / sum * v[(p * kKvHeads + kvh) * kHeadDim + i];
        ASSERT_NEAR(out[(t * kHeads + h) * kHeadDim + i], ref, 1e-5) << "token " << t << " head " << h;
      }
    }
  // Layer 0 was never written: K/V went to layer 1 only.
  EXPECT_EQ(cache[layout.offset(table[0], 0, 0, 0)], 0.0f);
  EXPECT_EQ(cache[layout.offset(table[0], 1, 0, 0)], k[0]);
  EXPECT_EQ(cache[layout.offset(table[0], 1, 1, 0)], v[0]);
}

}  // namespace
}  // namespace baton

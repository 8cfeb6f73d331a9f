// DeepSeek-V3 on the CPU backend beyond the golden fixture: the latent KV
// cache's size, grouped sigmoid routing with the correction bias, the
// interleaved rope layout, and MLA with q_lora_rank null.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/fp32_random_checkpoint.h"
#include "backend/model_kv_layout.h"
#include "backend/step_builder.h"
#include "model/presets.h"
#include "model/safetensors_writer.h"
#include "model/weight_names.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

const std::string kFixture = std::string(BATON_TEST_DATA) + "/fixtures/models/deepseek-v3-tiny";

std::unique_ptr<CpuBackend> open_cpu(const std::string& dir) {
  auto ckpt = Checkpoint::open(dir);
  EXPECT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  if (!ckpt.is_ok()) return nullptr;
  auto b = CpuBackend::create(**ckpt, BackendOptions{.num_threads = 2});
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  if (!b.is_ok()) return nullptr;
  EXPECT_TRUE((*b)->init_kv_cache(32, 16).is_ok());
  return std::move(b).value();
}

TEST(DeepseekKvCache, OneLatentRowPerTokenPerLayer) {
  auto backend = open_cpu(kFixture);
  ASSERT_NE(backend, nullptr);
  // kv_lora_rank 32 + qk_rope_head_dim 8 fp32 values per token per layer, 3 layers; no per-head K/V.
  EXPECT_EQ(backend->kv_block_bytes(16), 16u * 3 * (32 + 8) * sizeof(float));
  const KvLayout l = backend->kv_memory().layout;
  EXPECT_TRUE(l.is_latent());
  EXPECT_EQ(l.planes(), 1);
  EXPECT_EQ(l.token_elems(), 40);
  EXPECT_EQ(l.kv_lora_rank, 32);
  EXPECT_EQ(l.qk_rope_head_dim, 8);
  EXPECT_EQ(l.block_bytes() * 32, l.total_bytes());
  // [block][layer][1][row][40]: layer 1 of block 2 starts 16 rows after layer 0.
  EXPECT_EQ(l.offset(2, 1, 0, 3), 2 * (3 * 16 * 40) + 1 * 16 * 40 + 3 * 40);

  // The real model: 576 bf16 values per token per layer, ~70 KB per token over
  // 61 layers, against 128 KB for Llama-3.1-8B's per-head K and V.
  KvLayout dsv3 = model_kv_layout(find_model_preset("deepseek-v3")->config, DType::kBF16);
  EXPECT_EQ(dsv3.token_elems(), 576);
  EXPECT_EQ(dsv3.block_bytes() / dsv3.block_size / dsv3.num_layers, 576u * 2);
  EXPECT_EQ(dsv3.block_bytes() / dsv3.block_size, 70272u);
  KvLayout llama = model_kv_layout(find_model_preset("llama3.1-8b")->config, DType::kBF16);
  EXPECT_FALSE(llama.is_latent());
  EXPECT_EQ(llama.block_bytes() / llama.block_size, 131072u);
}

TEST(DeepseekKvCache, PrefillWritesOnlyItsTokensLatentRows) {
  auto backend = open_cpu(kFixture);
  ASSERT_NE(backend, nullptr);
  const KvMemory mem = backend->kv_memory();
  const float* kv = static_cast<const float*>(mem.base);
  std::fill(static_cast<float*>(mem.base), static_cast<float*>(mem.base) + mem.layout.total_bytes() / 4, 0.0f);
  std::vector<testing::TestSeq> seqs(1);
  seqs[0].tokens = {5, 17, 300, 42, 9};
  seqs[0].params.temperature = 0.0f;
  seqs[0].blocks = {7};
  StepInput in = testing::build_step(seqs, {5}, 16);
  ASSERT_TRUE(backend->execute(in).is_ok());
  for (int layer = 0; layer < 3; ++layer)
    for (int row = 0; row < 16; ++row) {
      const float* r = kv + mem.layout.offset(7, layer, 0, row);
      double norm = 0.0;
      for (int i = 0; i < 32; ++i) norm += r[i] * r[i];  // the normalised latent: rms ~ its norm weight
      if (row < 5) EXPECT_GT(norm / 32, 0.5) << "layer " << layer << " row " << row;
      else EXPECT_EQ(norm, 0.0) << "layer " << layer << " row " << row;
    }
}

TEST(DeepseekRouting, GroupLimitedBiasedChoiceUnbiasedWeights) {
  GroupedTopkArgs a;
  a.num_experts = 8;
  a.top_k = 2;
  a.n_group = 2;
  a.topk_group = 1;
  a.renormalize = true;
  a.routed_scaling_factor = 2.5f;
  // Group 0 has the best raw scores; the bias lifts group 1 above it.
  const float logits[8] = {2.0f, 1.9f, -3.0f, -3.0f, 1.5f, 1.4f, -3.0f, -3.0f};
  const float bias[8] = {0, 0, 0, 0, 0.2f, 0.2f, 0, 0};
  int32_t ids[2];
  float w[2];
  grouped_topk_route(logits, bias, 1, a, ids, w);
  auto sig = [](float x) { return 1.0f / (1.0f + std::exp(-x)); };
  EXPECT_EQ(ids[0], 4);
  EXPECT_EQ(ids[1], 5);
  const float s4 = sig(1.5f), s5 = sig(1.4f);
  EXPECT_NEAR(w[0], s4 / (s4 + s5) * 2.5f, 1e-6);  // weights from the unbiased scores
  EXPECT_NEAR(w[1], s5 / (s4 + s5) * 2.5f, 1e-6);

  a.renormalize = false;
  grouped_topk_route(logits, bias, 1, a, ids, w);
  EXPECT_NEAR(w[0], s4 * 2.5f, 1e-6);

  // Experts outside the chosen group never win, even when the chosen group's
  // biased scores are negative (masked to -inf, as vLLM does).
  const float flat[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const float skew[8] = {0, 0, 0, 0, 6.0f, -5.0f, -5.0f, -5.0f};
  a.renormalize = true;
  grouped_topk_route(flat, skew, 1, a, ids, w);
  EXPECT_EQ(ids[0], 4);
  EXPECT_EQ(ids[1], 5);
  EXPECT_NEAR(w[0], 1.25f, 1e-6);

  // Two groups of four, both kept: plain top-k by biased score.
  a.topk_group = 2;
  grouped_topk_route(logits, bias, 1, a, ids, w);
  EXPECT_EQ(ids[0], 4);  // 0.818 + 0.2 beats 0.881
  EXPECT_EQ(ids[1], 5);  // 0.802 + 0.2 beats 0.881 too
}

TEST(DeepseekRope, InterleavedPairsAreHfsDeinterleavedRotation) {
  constexpr int kRot = 8, kHalf = 4;
  const int32_t pos[1] = {11};
  const std::vector<float> inv = rope_inv_freq(kRot, 10000.0, std::nullopt);
  std::vector<float> cs(kRot);
  rope_cos_sin(pos, 1, inv.data(), kHalf, cs.data());
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  float x[kRot], deinterleaved[kRot];
  for (float& v : x) v = nd(rng);
  for (int i = 0; i < kHalf; ++i) {  // HF: view(d/2, 2).transpose -> evens then odds, then rotate_half
    deinterleaved[i] = x[2 * i];
    deinterleaved[i + kHalf] = x[2 * i + 1];
  }
  apply_rope_strided(x, 1, 1, kRot, kRot, /*interleaved=*/true, cs.data());
  apply_rope_strided(deinterleaved, 1, 1, kRot, kRot, /*interleaved=*/false, cs.data());
  for (int i = 0; i < kHalf; ++i) {
    EXPECT_FLOAT_EQ(x[2 * i], deinterleaved[i]);
    EXPECT_FLOAT_EQ(x[2 * i + 1], deinterleaved[i + kHalf]);
  }
}

// q_lora_rank null (one q_proj) against the LoRA path with q_a_proj = I and
// q_a_layernorm = 1 and q_b_proj = q_proj: the same model up to a second
// RMS normalisation of an already normalised vector (input norms are 1).
TEST(DeepseekMla, QLoraNullMatchesAnIdentityLora) {
  const fs::path base = fs::temp_directory_path() / ("baton_dsv3_qlora_" + std::to_string(std::random_device{}()));
  const std::string dir_null = (base / "null").string(), dir_lora = (base / "lora").string();
  ModelConfig c = find_model_preset("tiny-deepseek-v3")->config;
  ASSERT_EQ(c.mla.q_lora_rank, 0);
  std::unique_ptr<Checkpoint> ckpt = testing::write_fp32_random_checkpoint(c, dir_null, 3, 0.2);
  ASSERT_NE(ckpt, nullptr);

  ModelConfig lora = ckpt->config();
  const int64_t h = lora.hidden_size;
  lora.mla.q_lora_rank = static_cast<int>(h);
  std::vector<float> identity(h * h, 0.0f), ones(h, 1.0f);
  for (int64_t i = 0; i < h; ++i) identity[i * h + i] = 1.0f;
  std::vector<TensorView> tensors;
  for (const WeightSpec& w : expected_weights(lora)) {
    TensorView t{w.name, DType::kF32, w.shape, nullptr};
    if (w.name.ends_with("q_a_proj.weight")) t.data = identity.data();
    else if (w.name.ends_with("q_a_layernorm.weight")) t.data = ones.data();
    else {
      std::string from = w.name;
      if (from.ends_with("q_b_proj.weight")) from.replace(from.find("q_b_proj"), 8, "q_proj");
      auto src = ckpt->tensor(from, w.shape);
      ASSERT_TRUE(src.is_ok()) << src.status().to_string();
      t.data = src->data;
    }
    tensors.push_back(t);
  }
  fs::create_directories(dir_lora);
  ASSERT_TRUE(write_safetensors(dir_lora + "/model.safetensors", tensors).is_ok());
  std::ofstream(dir_lora + "/config.json") << lora.to_json().dump(2);

  auto logits_of = [](const std::string& dir) {
    auto b = open_cpu(dir);
    std::vector<testing::TestSeq> seqs(1);
    for (int i = 0; i < 21; ++i) seqs[0].tokens.push_back((i * 37 + 11) % 512);
    seqs[0].blocks = {3, 9};
    StepInput in = testing::build_step(seqs, {21}, 16);
    auto out = b->forward_all_logits(in);
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    return out.is_ok() ? *out : std::vector<float>();
  };
  const std::vector<float> a = logits_of(dir_null), b = logits_of(dir_lora);
  ASSERT_EQ(a.size(), 21u * 512);
  ASSERT_EQ(b.size(), a.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += a[i] * a[i];
  }
  EXPECT_LT(std::sqrt(num / den), 1e-4);
  EXPECT_GT(den, 0.0);
  fs::remove_all(base);
}

}  // namespace
}  // namespace baton

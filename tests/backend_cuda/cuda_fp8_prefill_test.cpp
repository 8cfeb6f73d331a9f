// FP8 W8A8 at prefill sizes through the whole CUDA backend. The fixtures'
// hidden size (64) never reaches cuBLASLt's block-scaled GEMM (k % 128), so
// this runs the default preset's shape (hidden 256, intermediate 768) with
// random weights, quantised fp8-block as `baton init-model --quantize` does.
// The CUDA backend quantises the activations per token group of 128 columns:
// at a multiple of 4 rows the norms and the SwiGLU quantise their own output
// for the GEMM after them (fp8_kernels.h); other row counts go through the
// GEMM's own quantiser, the last m mod 4 rows through its GEMV in bf16. The
// last position's logits are held against the CPU backend's (weights
// dequantised, activations in bf16), by cosine:
//  - >= 0.98 where the last row's activations were quantised (64 and 256
//    rows). On an H100 (2026-12-05) they measured 0.990 and 0.989: every
//    one of the 4 layers' 4 GEMMs adds the e4m3 rounding of its input;
//  - >= 0.99 where the last row went through the GEMV (61 and 5 rows:
//    0.997 and 0.998 there), only the earlier rows' K/V quantised.
// The logits must depend on the context for that to mean anything: two
// prompts that end in the same token give CPU logits of cosine < 0.5 (0.17
// when written). The weights' spread is 0.1, not HF's 0.02.
#include <gtest/gtest.h>

#include <iostream>
#include <random>
#include <utility>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/logit_cosine.h"
#include "backend/step_builder.h"
#include "cuda_test_util.h"
#include "model/checkpoint.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "support/temp_dir.h"

namespace baton::cuda {
namespace {

constexpr int kBlockSize = 16, kBlocks = 64;

class CudaFp8Prefill : public baton::testing::TempDirTest {};

TEST_F(CudaFp8Prefill, W8a8LogitsNearCpuAtEveryRowCount) {
  BATON_REQUIRE_GPU();
  auto preset = find_model_preset("default");
  ASSERT_TRUE(preset.is_ok()) << preset.status().to_string();
  RandomCheckpointOptions ro;
  ro.out_dir = (dir_ / "model").string();
  ro.seed = 7;
  ro.num_threads = 2;
  ro.initializer_range = 0.1;
  ro.quantization = Fp8Quantization{};  // fp8-block, 128 x 128
  auto written = write_random_checkpoint(preset->config, ro);
  ASSERT_TRUE(written.is_ok()) << written.status().to_string();

  auto cpu_ckpt = Checkpoint::open(ro.out_dir);  // FP8 weights dequantised
  ASSERT_TRUE(cpu_ckpt.is_ok()) << cpu_ckpt.status().to_string();
  CheckpointOpenOptions keep_fp8;
  keep_fp8.dequantize_fp8 = false;
  auto gpu_ckpt = Checkpoint::open(ro.out_dir, keep_fp8);
  ASSERT_TRUE(gpu_ckpt.is_ok()) << gpu_ckpt.status().to_string();
  CudaBackendOptions go;
  go.max_num_tokens = 512;
  go.use_cuda_graphs = false;
  auto gpu = CudaBackend::create(**gpu_ckpt, go);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().to_string();
  ASSERT_TRUE((*gpu)->init_kv_cache(kBlocks, kBlockSize).is_ok());
  BackendOptions co;
  co.num_threads = 2;
  auto cpu = CpuBackend::create(**cpu_ckpt, co);
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  ASSERT_TRUE((*cpu)->init_kv_cache(kBlocks, kBlockSize).is_ok());

  std::mt19937 rng(11);
  std::uniform_int_distribution<int32_t> token(0, preset->config.vocab_size - 1);
  const auto last_logits = [&](Backend& backend, const std::vector<int32_t>& prompt) {
    baton::testing::TestSeq s;
    s.tokens = prompt;
    s.prompt_len = static_cast<int>(prompt.size());
    s.params.temperature = 0.0f;
    for (int b = 0; b < (s.prompt_len + kBlockSize - 1) / kBlockSize; ++b) s.blocks.push_back(b);
    std::vector<baton::testing::TestSeq> seqs = {s};
    StepInput in = baton::testing::build_step(seqs, {s.prompt_len}, kBlockSize);
    in.return_logits = true;
    auto out = backend.execute(in);
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    return out.is_ok() ? out->logits : std::vector<float>{};
  };
  const auto random_prompt = [&](int rows) {
    std::vector<int32_t> p;
    for (int i = 0; i < rows; ++i) p.push_back(token(rng));
    return p;
  };
  for (auto [rows, min_cosine] : {std::pair{64, 0.98}, std::pair{256, 0.98}, std::pair{61, 0.99}, std::pair{5, 0.99}}) {
    const std::vector<int32_t> prompt = random_prompt(rows);
    const std::vector<float> g = last_logits(**gpu, prompt), c = last_logits(**cpu, prompt);
    ASSERT_EQ(g.size(), c.size());
    ASSERT_FALSE(c.empty());
    const double cos = baton::testing::cosine(g, c);
    EXPECT_GE(cos, min_cosine) << rows << " rows";
    std::cout << "[fp8 prefill] " << rows << " rows: logits cosine " << cos << ", rel L2 "
              << cuda::testing::rel_l2(g, c) << "\n";
    if (rows == 64) {  // another context, the same last token
      std::vector<int32_t> other = random_prompt(rows);
      other.back() = prompt.back();
      const std::vector<float> c_other = last_logits(**cpu, other), g_other = last_logits(**gpu, other);
      EXPECT_LT(baton::testing::cosine(c, c_other), 0.5) << "the logits hardly depend on the context";
      EXPECT_GE(baton::testing::cosine(g_other, c_other), min_cosine);
    }
  }
}

}  // namespace
}  // namespace baton::cuda

// --kv-cache-dtype fp8 on the CUDA backend against the CPU reference at fp8
// KV, on every fixture model whose attention the CUDA kernels read at fp8
// (deepseek-v3-tiny's MLA latent cache is refused at fp8 on CUDA, checked
// here too): teacher-forced on the CPU's greedy tokens, the CUDA argmax
// equals the CPU's wherever the CPU's top-2 margin exceeds 0.05 (the
// method of cuda_model_test.cpp). Free-running greedy paths are not compared:
// bf16 activations against the CPU's fp32 part at near ties on these random
// fixtures (seen on an H200, 2026-12-03: 3 of 4 fixtures parted after 1 to 4
// tokens in one of 3 prompts), as they do at bf16 KV. The CUDA cache holds 2x
// the blocks of BF16 in the same bytes.
#include <gtest/gtest.h>

#include <algorithm>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/fixture_models.h"
#include "backend/greedy_batch.h"
#include "cuda_test_util.h"
#include "model/checkpoint.h"

namespace baton::cuda {
namespace {

constexpr int kBlocks = 128, kBlockSize = 8;

std::unique_ptr<CudaBackend> cuda_backend(const Checkpoint& ckpt, DType kv) {
  CudaBackendOptions o;
  o.max_num_tokens = 2048;
  o.kv_dtype = kv;
  auto g = CudaBackend::create(ckpt, o);
  EXPECT_TRUE(g.is_ok()) << g.status().to_string();
  return g.is_ok() ? std::move(g).value() : nullptr;
}

class CudaKvFp8Model : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaKvFp8Model, GreedyTokensMatchCpuFp8Kv) {
  BATON_REQUIRE_GPU();
  auto ckpt = Checkpoint::open(baton::testing::fixture_model_dir(GetParam()));
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  std::unique_ptr<CudaBackend> gpu = cuda_backend(**ckpt, DType::kF8E4M3);
  ASSERT_NE(gpu, nullptr);
  EXPECT_EQ(cuda_backend(**ckpt, DType::kBF16)->kv_block_bytes(16), 2 * gpu->kv_block_bytes(16));
  BackendOptions co;
  co.num_threads = 2;
  co.kv_cache_dtype = KvCacheDType::kFp8;
  auto cpu = CpuBackend::create(**ckpt, co);
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  ASSERT_TRUE(gpu->init_kv_cache(kBlocks, kBlockSize).is_ok());
  ASSERT_TRUE((*cpu)->init_kv_cache(kBlocks, kBlockSize).is_ok());
  EXPECT_EQ(gpu->kv_memory().layout.dtype, DType::kF8E4M3);
  const auto prompts = baton::testing::golden_prompts(GetParam());
  baton::testing::GreedyBatch batch;
  batch.new_tokens = 8;
  batch.block_size = kBlockSize;
  const baton::testing::Generation want = baton::testing::generate_greedy(**cpu, prompts, batch);
  const baton::testing::Generation forced = baton::testing::generate_greedy(*gpu, prompts, batch, &want);
  const int vocab = gpu->model_config().vocab_size;
  ASSERT_EQ(forced.logits.size(), want.logits.size());
  int checked = 0;
  for (size_t r = 0; r < want.logits.size() / vocab; ++r) {
    const float* c = want.logits.data() + r * vocab;
    const float* g = forced.logits.data() + r * vocab;
    std::vector<float> top(c, c + vocab);
    std::partial_sort(top.begin(), top.begin() + 2, top.end(), std::greater<>());
    if (top[0] - top[1] <= 0.05f) continue;
    EXPECT_EQ(std::max_element(g, g + vocab) - g, std::max_element(c, c + vocab) - c) << "row " << r;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaKvFp8Model,
                         ::testing::Values("llama3-tiny", "qwen2-tiny", "qwen3-tiny", "qwen3-moe-tiny"),
                         baton::testing::model_param_name);

TEST(CudaKvFp8, MlaAtFp8IsRefusedNamingTheFlag) {
  BATON_REQUIRE_GPU();
  auto ckpt = Checkpoint::open(baton::testing::fixture_model_dir("deepseek-v3-tiny"));
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  CudaBackendOptions o;
  o.kv_dtype = DType::kF8E4M3;
  auto g = CudaBackend::create(**ckpt, o);
  ASSERT_FALSE(g.is_ok());
  EXPECT_EQ(g.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(g.status().message().find("--kv-cache-dtype fp8 does not cover MLA"), std::string::npos)
      << g.status().message();
}

}  // namespace
}  // namespace baton::cuda

// FP8 checkpoints on the CPU backend (the reference: weights dequantised at
// load). Every fixture model, quantised both ways as `baton init-model
// --quantize fp8-block|fp8-tensor` does, loads and runs; its last-prompt
// logits have cosine >= 0.99 against the bf16 model's, and the greedy tokens
// of both are reported (FP8 may pick other tokens where two are close).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backend/backend_factory.h"
#include "backend/fixture_models.h"
#include "backend/logit_cosine.h"
#include "backend/step_builder.h"
#include "common/json.h"
#include "model/checkpoint.h"
#include "model/fp8_checkpoint.h"
#include "support/temp_dir.h"

namespace baton {
namespace {

namespace fs = std::filesystem;
using testing::TestSeq;

constexpr int kBlockSize = 16;
constexpr int kNumBlocks = 64;
constexpr int kNewTokens = 8;

struct GreedyRun {
  std::vector<float> last_prompt_logits;
  std::vector<int32_t> greedy;
};

// The prompt in one step, then kNewTokens - 1 decode steps.
GreedyRun run_greedy(const std::string& dir, const std::vector<int32_t>& prompt, int tensor_parallel_size = 1) {
  GreedyRun r;
  auto ckpt = Checkpoint::open(dir);
  EXPECT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  if (!ckpt.is_ok()) return r;
  BackendOptions options;
  options.num_threads = 2;
  options.tensor_parallel_size = tensor_parallel_size;
  auto backend = make_backend("cpu", **ckpt, options);
  EXPECT_TRUE(backend.is_ok()) << backend.status().to_string();
  if (!backend.is_ok()) return r;
  EXPECT_TRUE((*backend)->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
  std::vector<TestSeq> seqs(1);
  seqs[0].tokens = prompt;
  seqs[0].prompt_len = static_cast<int>(prompt.size());
  seqs[0].params.temperature = 0.0f;
  for (int b = 0; b * kBlockSize < static_cast<int>(prompt.size()) + kNewTokens; ++b) seqs[0].blocks.push_back(b);
  for (int step = 0; step < kNewTokens; ++step) {
    std::vector<int> chunk = {static_cast<int>(seqs[0].tokens.size()) - seqs[0].num_computed};
    std::vector<int> index_of;
    StepInput in = testing::build_step(seqs, chunk, kBlockSize, &index_of);
    in.return_logits = (step == 0);
    auto out = (*backend)->execute(in);
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    if (!out.is_ok()) return r;
    if (step == 0) r.last_prompt_logits = out->logits;
    testing::apply_step(seqs, chunk, *out, index_of);
  }
  r.greedy = seqs[0].output;
  return r;
}

class CpuFp8 : public testing::TempDirTest, public ::testing::WithParamInterface<std::string> {};
using CpuFp8Sharded = testing::TempDirTest;

TEST_P(CpuFp8, BothSchemesRunWithLogitsCloseToBf16) {
  const std::string bf16_dir = testing::fixture_model_dir(GetParam());
  auto golden = read_json_file(bf16_dir + "/golden.json");
  ASSERT_TRUE(golden.is_ok()) << golden.status().to_string();
  const auto prompt = (*golden)["prompts"][1]["prompt_ids"].get<std::vector<int32_t>>();
  const GreedyRun bf16 = run_greedy(bf16_dir, prompt);
  ASSERT_EQ(bf16.greedy.size(), static_cast<size_t>(kNewTokens));
  auto source = Checkpoint::open(bf16_dir);
  ASSERT_TRUE(source.is_ok());
  for (Fp8Scheme scheme : {Fp8Scheme::kBlock, Fp8Scheme::kTensor}) {
    const char* scheme_name = scheme == Fp8Scheme::kBlock ? "fp8-block" : "fp8-tensor";
    SCOPED_TRACE(scheme_name);
    Fp8Quantization q;
    q.scheme = scheme;
    const std::string out = (dir_ / scheme_name).string();
    auto stats = write_fp8_checkpoint(**source, q, out);
    ASSERT_TRUE(stats.is_ok()) << stats.status().to_string();
    EXPECT_GT(stats->num_quantized, 0);
    const GreedyRun fp8 = run_greedy(out, prompt);
    ASSERT_EQ(fp8.last_prompt_logits.size(), bf16.last_prompt_logits.size());
    const double cos = testing::cosine(fp8.last_prompt_logits, bf16.last_prompt_logits);
    EXPECT_GE(cos, 0.99);
    EXPECT_LT(cos, 1.0 - 1e-9) << "identical logits: were the weights quantised?";
    size_t same = 0;
    while (same < fp8.greedy.size() && fp8.greedy[same] == bf16.greedy[same]) ++same;
    std::cout << fmt::format("[fp8] {} {}: logits cosine {:.5f}; greedy bf16 [{}] fp8 [{}], first {} of {} equal\n",
                             GetParam(), scheme_name, cos, fmt::join(bf16.greedy, " "), fmt::join(fp8.greedy, " "),
                             same, kNewTokens);
    RecordProperty(std::string(scheme_name) + "_cosine", fmt::format("{:.5f}", cos));
    RecordProperty(std::string(scheme_name) + "_greedy_prefix_equal", static_cast<int>(same));
  }
}

// Tensor-parallel ranks shard the dequantised weights like any others: an
// FP8 checkpoint at TP=2 generates what it generates at TP=1.
TEST_F(CpuFp8Sharded, TensorParallelRanksMatchOneRank) {
  const std::string bf16_dir = testing::fixture_model_dir("qwen3-moe-tiny");
  auto source = Checkpoint::open(bf16_dir);
  ASSERT_TRUE(source.is_ok());
  const std::string out = (dir_ / "fp8").string();
  ASSERT_TRUE(write_fp8_checkpoint(**source, Fp8Quantization(), out).is_ok());
  const std::vector<int32_t> prompt = {5, 17, 300, 42, 9, 77, 128};
  const GreedyRun one = run_greedy(out, prompt, 1);
  const GreedyRun two = run_greedy(out, prompt, 2);
  ASSERT_EQ(one.greedy.size(), static_cast<size_t>(kNewTokens));
  EXPECT_EQ(two.greedy, one.greedy);
  ASSERT_EQ(two.last_prompt_logits.size(), one.last_prompt_logits.size());
  for (size_t i = 0; i < one.last_prompt_logits.size(); ++i)
    ASSERT_NEAR(two.last_prompt_logits[i], one.last_prompt_logits[i], 1e-4) << "logit " << i;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CpuFp8, ::testing::ValuesIn(testing::kFixtureModels), testing::model_param_name);

}  // namespace
}  // namespace baton

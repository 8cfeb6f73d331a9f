// The CPU backend against the Hugging Face reference (tests/data/fixtures/
// models/*/golden.json): greedy tokens, last-prompt logits and per-position
// argmax, for one sequence at a time and for all prompts batched in chunks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "backend/fixture_models.h"
#include "backend/step_builder.h"
#include "common/json.h"
#include "model/checkpoint.h"

namespace baton {
namespace {

using testing::TestSeq;

constexpr int kBlockSize = 16;
constexpr int kNumBlocks = 128;

struct GoldenPrompt {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> greedy_ids;
  std::vector<float> last_prompt_logits;
  std::vector<int32_t> prompt_argmax;
};

std::string model_dir(const std::string& name) { return testing::fixture_model_dir(name); }

std::vector<GoldenPrompt> load_golden(const std::string& name) {
  Result<Json> j = read_json_file(model_dir(name) + "/golden.json");
  EXPECT_TRUE(j.is_ok()) << j.status().to_string();
  std::vector<GoldenPrompt> out;
  if (!j.is_ok()) return out;
  for (const Json& p : (*j)["prompts"]) {
    GoldenPrompt g;
    g.prompt_ids = p["prompt_ids"].get<std::vector<int32_t>>();
    g.greedy_ids = p["greedy_ids"].get<std::vector<int32_t>>();
    g.last_prompt_logits = p["last_prompt_logits"].get<std::vector<float>>();
    g.prompt_argmax = p["prompt_argmax"].get<std::vector<int32_t>>();
    out.push_back(std::move(g));
  }
  return out;
}

std::unique_ptr<CpuBackend> open_backend(const std::string& name) {
  Result<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::open(model_dir(name));
  EXPECT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  if (!ckpt.is_ok()) return nullptr;
  BackendOptions options;
  options.num_threads = 2;
  Result<std::unique_ptr<CpuBackend>> b = CpuBackend::create(**ckpt, options);
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  if (!b.is_ok()) return nullptr;
  Status st = (*b)->init_kv_cache(kNumBlocks, kBlockSize);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return std::move(b).value();
}

double max_abs_diff(const float* a, const std::vector<float>& ref) {
  double worst = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(a[i]) - ref[i]));
  return worst;
}

double relative_l2(const float* a, const std::vector<float>& ref) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

// Block ids for `num_tokens` positions, scattered over the cache (not
// 0, 1, 2, ...) so that the block table is really followed.
std::vector<int32_t> scattered_blocks(int num_tokens, std::mt19937& rng, std::vector<int32_t>& free_blocks) {
  const int needed = (num_tokens + kBlockSize - 1) / kBlockSize;
  std::vector<int32_t> blocks;
  for (int i = 0; i < needed; ++i) {
    std::uniform_int_distribution<size_t> pick(0, free_blocks.size() - 1);
    const size_t j = pick(rng);
    blocks.push_back(free_blocks[j]);
    free_blocks.erase(free_blocks.begin() + static_cast<std::ptrdiff_t>(j));
  }
  return blocks;
}

std::vector<int32_t> all_blocks() {
  std::vector<int32_t> v(kNumBlocks);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

class CpuGolden : public ::testing::TestWithParam<std::string> {};

// One sequence at a time: the whole prompt in one step, then one decode step
// per generated token.
TEST_P(CpuGolden, GreedyTokensAndLastPromptLogits) {
  auto backend = open_backend(GetParam());
  ASSERT_NE(backend, nullptr);
  const int vocab = backend->model_config().vocab_size;
  std::mt19937 rng(7);
  const auto golden = load_golden(GetParam());
  ASSERT_EQ(golden.size(), 6u);
  for (size_t p = 0; p < golden.size(); ++p) {
    const GoldenPrompt& g = golden[p];
    SCOPED_TRACE("prompt " + std::to_string(p) + " of length " + std::to_string(g.prompt_ids.size()));
    std::vector<int32_t> free_blocks = all_blocks();
    std::vector<TestSeq> seqs(1);
    seqs[0].tokens = g.prompt_ids;
    seqs[0].prompt_len = static_cast<int>(g.prompt_ids.size());
    seqs[0].params.temperature = 0.0f;
    seqs[0].blocks = scattered_blocks(static_cast<int>(g.prompt_ids.size() + g.greedy_ids.size()), rng, free_blocks);
    std::vector<int> index_of;
    for (size_t step = 0; step < g.greedy_ids.size(); ++step) {
      std::vector<int> chunk = {static_cast<int>(seqs[0].tokens.size()) - seqs[0].num_computed};
      StepInput in = testing::build_step(seqs, chunk, kBlockSize, &index_of);
      in.return_logits = (step == 0);
      Result<StepOutput> out = backend->execute(in);
      ASSERT_TRUE(out.is_ok()) << out.status().to_string();
      ASSERT_EQ(out->samples.size(), 1u);
      if (step == 0) {
        ASSERT_EQ(out->logits.size(), static_cast<size_t>(vocab));
        EXPECT_LT(relative_l2(out->logits.data(), g.last_prompt_logits), 1e-4);
        EXPECT_LT(max_abs_diff(out->logits.data(), g.last_prompt_logits), 1e-4);
      }
      testing::apply_step(seqs, chunk, *out, index_of);
    }
    EXPECT_EQ(seqs[0].output, g.greedy_ids);
  }
}

// Logits of every prompt position (debug path): argmax at each position.
TEST_P(CpuGolden, PromptArgmaxAtEveryPosition) {
  auto backend = open_backend(GetParam());
  ASSERT_NE(backend, nullptr);
  const int vocab = backend->model_config().vocab_size;
  std::mt19937 rng(11);
  for (const GoldenPrompt& g : load_golden(GetParam())) {
    std::vector<int32_t> free_blocks = all_blocks();
    std::vector<TestSeq> seqs(1);
    seqs[0].tokens = g.prompt_ids;
    seqs[0].params.temperature = 0.0f;
    seqs[0].blocks = scattered_blocks(static_cast<int>(g.prompt_ids.size()), rng, free_blocks);
    StepInput in = testing::build_step(seqs, {static_cast<int>(g.prompt_ids.size())}, kBlockSize);
    Result<std::vector<float>> logits = backend->forward_all_logits(in);
    ASSERT_TRUE(logits.is_ok()) << logits.status().to_string();
    ASSERT_EQ(logits->size(), g.prompt_ids.size() * vocab);
    std::vector<int32_t> argmax;
    for (size_t t = 0; t < g.prompt_ids.size(); ++t) {
      const float* row = logits->data() + t * vocab;
      argmax.push_back(static_cast<int32_t>(std::max_element(row, row + vocab) - row));
    }
    EXPECT_EQ(argmax, g.prompt_argmax) << "prompt of length " << g.prompt_ids.size();
    EXPECT_LT(relative_l2(logits->data() + (g.prompt_ids.size() - 1) * vocab, g.last_prompt_logits), 1e-4);
  }
}

// All prompts in one batch: prompts fed in chunks of 7 tokens, sequences of
// different lengths mixing prefill chunks and decode tokens in each step.
TEST_P(CpuGolden, BatchedChunkedPrefillMatchesGreedy) {
  constexpr int kChunk = 7;
  auto backend = open_backend(GetParam());
  ASSERT_NE(backend, nullptr);
  const auto golden = load_golden(GetParam());
  std::mt19937 rng(3);
  std::vector<int32_t> free_blocks = all_blocks();
  std::vector<TestSeq> seqs(golden.size());
  for (size_t i = 0; i < golden.size(); ++i) {
    seqs[i].tokens = golden[i].prompt_ids;
    seqs[i].prompt_len = static_cast<int>(golden[i].prompt_ids.size());
    seqs[i].params.temperature = 0.0f;
    seqs[i].blocks = scattered_blocks(static_cast<int>(golden[i].prompt_ids.size() + golden[i].greedy_ids.size()), rng,
                                      free_blocks);
  }
  for (int step = 0; step < 200; ++step) {
    std::vector<int> chunk(seqs.size(), 0);
    bool any = false;
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (seqs[i].output.size() >= golden[i].greedy_ids.size()) continue;
      chunk[i] = std::min<int>(kChunk, static_cast<int>(seqs[i].tokens.size()) - seqs[i].num_computed);
      any = true;
    }
    if (!any) break;
    std::vector<int> index_of;
    StepInput in = testing::build_step(seqs, chunk, kBlockSize, &index_of);
    Result<StepOutput> out = backend->execute(in);
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    ASSERT_EQ(out->samples.size(), index_of.size());
    testing::apply_step(seqs, chunk, *out, index_of);
  }
  for (size_t i = 0; i < seqs.size(); ++i)
    EXPECT_EQ(seqs[i].output, golden[i].greedy_ids) << "prompt " << i << " of length " << golden[i].prompt_ids.size();
}

// Seeded sampling: a request draws the same tokens alone or in a batch.
TEST_P(CpuGolden, SeededSamplingIndependentOfBatch) {
  constexpr int kNew = 12;
  const auto golden = load_golden(GetParam());
  auto generate = [&](const std::vector<size_t>& prompts) {
    auto backend = open_backend(GetParam());
    EXPECT_NE(backend, nullptr);
    std::vector<TestSeq> seqs(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      seqs[i].tokens = golden[prompts[i]].prompt_ids;
      seqs[i].params.temperature = 0.9f;
      seqs[i].params.top_p = 0.95f;
      seqs[i].seed = 1000 + prompts[i];
      const int need = (static_cast<int>(seqs[i].tokens.size()) + kNew + kBlockSize - 1) / kBlockSize;
      for (int b = 0; b < need; ++b) seqs[i].blocks.push_back(static_cast<int32_t>(i * 20 + b));
    }
    for (int step = 0; step < kNew; ++step) {
      std::vector<int> chunk;
      for (auto& s : seqs) chunk.push_back(static_cast<int>(s.tokens.size()) - s.num_computed);
      std::vector<int> index_of;
      StepInput in = testing::build_step(seqs, chunk, kBlockSize, &index_of);
      Result<StepOutput> out = backend->execute(in);
      EXPECT_TRUE(out.is_ok()) << out.status().to_string();
      if (!out.is_ok()) break;
      testing::apply_step(seqs, chunk, *out, index_of);
    }
    std::vector<std::vector<int32_t>> outputs;
    for (auto& s : seqs) outputs.push_back(s.output);
    return outputs;
  };
  const auto batched = generate({0, 1, 2, 3, 4, 5});
  for (size_t p : {1u, 4u}) {
    const auto alone = generate({p});
    ASSERT_EQ(alone[0].size(), static_cast<size_t>(kNew));
    EXPECT_EQ(alone[0], batched[p]) << "prompt " << p;
  }
  EXPECT_NE(batched[1], std::vector<int32_t>(golden[1].greedy_ids.begin(),
                                             golden[1].greedy_ids.begin() + kNew));  // it really sampled
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CpuGolden, ::testing::ValuesIn(testing::kFixtureModels), testing::model_param_name);

}  // namespace
}  // namespace baton

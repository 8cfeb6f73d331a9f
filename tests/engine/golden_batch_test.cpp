// Batch invariance under pressure on the real CPU backend: for every fixture
// model, all golden prompts (each twice, so prefix hits happen) submitted
// together with a 32-token budget (chunked prefill) and a KV cache barely
// larger than the longest request (preemption) give exactly the golden
// greedy tokens, with prefix caching on and off.
#include <filesystem>

#include <gtest/gtest.h>

#include "backend/backend_factory.h"
#include "common/json.h"
#include "engine/engine_test_util.h"

namespace baton {
namespace {

namespace fs = std::filesystem;
using namespace baton::testing;

std::vector<std::string> fixture_models() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(BATON_TEST_DATA) / "fixtures" / "models")) {
    if (fs::exists(e.path() / "golden.json")) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Case {
  std::string model_dir;
  bool prefix_caching;
};

class GoldenBatchTest : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenBatchTest, AllPromptsTogetherGiveTheGoldenGreedyTokens) {
  const Case& c = GetParam();
  auto golden = read_json_file(c.model_dir + "/golden.json");
  ASSERT_TRUE(golden.is_ok()) << golden.status().to_string();
  auto ckpt = Checkpoint::open(c.model_dir);
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  BackendOptions bo;
  bo.num_threads = 2;
  auto backend = make_backend("cpu", **ckpt, bo);
  ASSERT_TRUE(backend.is_ok()) << backend.status().to_string();

  EngineOptions opts;
  opts.block_size = 16;
  opts.max_num_batched_tokens = 32;
  opts.enable_prefix_caching = c.prefix_caching;
  // The longest request needs (200 + 24 - 1) / 16 -> 14 blocks; all of them
  // together need about 60: 16 forces preemption.
  opts.num_kv_blocks = 16;
  auto engine = EngineCore::create(std::move(backend).value(), nullptr, opts);
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  EngineCore& e = **engine;

  std::map<std::string, std::vector<int32_t>> expected;
  const Json& prompts = (*golden)["prompts"];
  for (int copy = 0; copy < 2; ++copy) {
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto g = gen("p" + std::to_string(i) + "c" + std::to_string(copy),
                   prompts[i]["prompt_ids"].get<std::vector<int32_t>>(),
                   static_cast<int>(prompts[i]["greedy_ids"].size()));
      expected[g.request_id] = prompts[i]["greedy_ids"].get<std::vector<int32_t>>();
      ASSERT_TRUE(e.add_request(g).is_ok());
    }
  }
  auto out = run_to_completion(e);
  for (auto& [id, ids] : expected) {
    EXPECT_EQ(out[id].ids, ids) << id;
    EXPECT_EQ(out[id].finish_reason, FinishReason::kLength) << id;
    EXPECT_TRUE(out[id].error.empty()) << out[id].error;
  }
  EngineStats s = e.stats();
  EXPECT_GT(s.num_preemptions, 0);
  EXPECT_EQ(s.num_kv_blocks_free, s.num_kv_blocks_total);
  if (c.prefix_caching) {
    EXPECT_GT(s.prefix_cache_hits, 0);
  } else {
    EXPECT_EQ(s.prefix_cache_hits, 0);
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const auto& m : fixture_models()) {
    out.push_back({m, true});
    out.push_back({m, false});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenBatchTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = fs::path(info.param.model_dir).filename().string();
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name + (info.param.prefix_caching ? "_prefix_on" : "_prefix_off");
                         });

}  // namespace
}  // namespace baton

namespace baton {
namespace {

// Seeded sampling on the CPU backend: a request with a seed gives the same
// tokens alone and among other sampled requests under chunking and preemption.
TEST(CpuSeededSampling, SameTokensAloneAndInABatch) {
  const std::string dir = std::string(BATON_TEST_DATA) + "/fixtures/models/qwen3-tiny";
  auto ckpt = Checkpoint::open(dir);
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  auto run = [&](bool crowded) {
    BackendOptions bo;
    bo.num_threads = 2;
    auto backend = make_backend("cpu", **ckpt, bo);
    EXPECT_TRUE(backend.is_ok());
    EngineOptions opts;
    opts.max_num_batched_tokens = 32;
    opts.num_kv_blocks = crowded ? 12 : 64;
    auto engine = EngineCore::create(std::move(backend).value(), nullptr, opts);
    EXPECT_TRUE(engine.is_ok());
    if (crowded) {
      for (int i = 0; i < 5; ++i) {
        auto g = gen("other" + std::to_string(i), tokens(20 + 13 * i, 3 + i), 30);
        g.sampling.temperature = 1.0f;
        g.sampling.top_p = 0.9f;
        EXPECT_TRUE((*engine)->add_request(g).is_ok());
      }
    }
    auto g = gen("x", tokens(40, 7), 30);
    g.sampling.temperature = 0.9f;
    g.sampling.top_k = 50;
    g.sampling.seed = 77;
    EXPECT_TRUE((*engine)->add_request(g).is_ok());
    auto out = run_to_completion(**engine);
    if (crowded) {
      EXPECT_GT((*engine)->stats().num_preemptions, 0);
    }
    return out["x"].ids;
  };
  auto alone = run(false);
  EXPECT_EQ(alone.size(), 30u);
  EXPECT_EQ(run(true), alone);
}

}  // namespace
}  // namespace baton

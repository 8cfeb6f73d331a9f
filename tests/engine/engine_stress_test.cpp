// Random arrivals, lengths, shared prefixes and aborts on a tight KV cache:
// every request ends exactly once, the ones not aborted give what they give
// alone, and no block leaks.
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "engine/engine_test_util.h"

namespace baton {
namespace {

using namespace baton::testing;

// Returns the number of preemptions (the test wants some).
int64_t stress(uint64_t seed, bool prefix_caching) {
  std::mt19937_64 rng(seed);
  auto uni = [&](int lo, int hi) { return static_cast<int>(lo + rng() % static_cast<uint64_t>(hi - lo + 1)); };
  EngineOptions opts;
  opts.block_size = 4;
  opts.num_kv_blocks = 40;  // 160 tokens
  opts.max_num_batched_tokens = uni(6, 48);
  opts.max_num_seqs = uni(2, 16);
  opts.enable_prefix_caching = prefix_caching;
  auto engine = make_engine(opts);
  std::vector<std::vector<int32_t>> prefixes;
  for (int i = 0; i < 4; ++i) prefixes.push_back(tokens(uni(4, 60), 100 * i + 1));

  std::map<std::string, std::vector<int32_t>> expected;
  std::set<std::string> aborted;
  std::map<std::string, Collected> out;
  int next = 0;
  for (int step = 0; step < 3000; ++step) {
    if (next < 150 && rng() % 3 == 0) {
      std::vector<int32_t> prompt = prefixes[rng() % prefixes.size()];
      prompt.resize(static_cast<size_t>(std::min<int>(static_cast<int>(prompt.size()), uni(1, 60))));
      for (int k = uni(0, 20); k > 0; --k) prompt.push_back(uni(0, 999));
      if (prompt.empty()) prompt.push_back(5);
      const int max_tokens = uni(1, std::max(1, 150 - static_cast<int>(prompt.size())));
      const std::string id = "r" + std::to_string(next++);
      EXPECT_TRUE(engine->add_request(gen(id, prompt, max_tokens)).is_ok()) << id;
      expected[id] = fake_reference(prompt, max_tokens);
    }
    if (next > 0 && rng() % 10 == 0) {
      const std::string id = "r" + std::to_string(rng() % static_cast<uint64_t>(next));
      if (auto o = engine->abort_request(id)) {
        aborted.insert(id);
        collect(out, {std::move(*o)});
      }
    }
    collect(out, engine->step());
    if (next >= 150 && !engine->has_unfinished_requests()) break;
  }
  EXPECT_FALSE(engine->has_unfinished_requests());
  EXPECT_EQ(out.size(), expected.size());
  for (auto& [id, ids] : expected) {
    const Collected& c = out[id];
    EXPECT_TRUE(c.finished) << id;
    if (aborted.count(id)) {
      EXPECT_EQ(c.finish_reason, FinishReason::kAbort) << id;
      // What it produced before the abort is a prefix of its output alone.
      EXPECT_TRUE(std::equal(c.ids.begin(), c.ids.end(), ids.begin())) << id;
    } else {
      EXPECT_EQ(c.ids, ids) << id;
      EXPECT_EQ(c.finish_reason, FinishReason::kLength) << id;
    }
  }
  EXPECT_EQ(engine->kv_cache().num_free_blocks(), 40);
  EXPECT_EQ(engine->kv_cache().num_requests(), 0);
  EngineStats s = engine->stats();
  EXPECT_EQ(s.num_requests_finished, static_cast<int64_t>(expected.size()));
  EXPECT_EQ(s.num_requests_aborted, static_cast<int64_t>(aborted.size()));
  if (prefix_caching) {
    EXPECT_GT(s.prefix_cache_hits, 0);
  }
  return s.num_preemptions;
}

TEST(EngineStress, RandomTrafficWithPrefixCaching) {
  int64_t num_preemptions = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE(seed);
    num_preemptions += stress(seed, true);
  }
  EXPECT_GT(num_preemptions, 0);
}

TEST(EngineStress, RandomTrafficWithoutPrefixCaching) {
  int64_t num_preemptions = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE(seed);
    num_preemptions += stress(seed, false);
  }
  EXPECT_GT(num_preemptions, 0);
}

}  // namespace
}  // namespace baton

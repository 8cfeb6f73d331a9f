// PD between tensor-parallel layouts: an in-process deployment whose prefill
// runs at TP=a and decode at TP=b returns exactly the tokens an agg TP=1
// instance returns, streamed and not, and with streamed KV, over the local,
// shm and tcp transports: 2->1, 1->2, 4->2, and KV heads replicated (the
// fixtures have 2 KV heads: TP=4 holds each on two ranks) on either side;
// 2->4 (both sides relayout); every fixture model, deepseek-v3's MLA latent
// (replicated on every rank) included. A prefill and a decode of different
// models are refused naming both layouts.
#include <gtest/gtest.h>

#include <ostream>

#include "pd_cluster.h"

namespace baton::pd_test {
namespace {

constexpr int kMaxTokens = 6;

Tweak tp(int n, int max_batched_tokens = 0) {
  return [n, max_batched_tokens](InstanceOptions& o) {
    o.engine.tensor_parallel_size = n;
    if (max_batched_tokens > 0) o.engine.engine.max_num_batched_tokens = max_batched_tokens;
  };
}

struct Case {
  std::string model;
  int prefill_tp;
  int decode_tp;
  std::string transport;
  bool stream_kv;  // the router starts the decode at the prefill's first event
};

std::string label(const Case& c) {
  return c.model + " TP=" + std::to_string(c.prefill_tp) + "->TP=" + std::to_string(c.decode_tp) + " over " +
         c.transport + (c.stream_kv ? " (streamed KV)" : "");
}

void PrintTo(const Case& c, std::ostream* os) { *os << label(c); }

void expect_same_as_agg(const Case& c) {
  const std::string model = fixture_model(c.model);
  auto agg = start_instance(model, "agg");
  // Streamed KV: the prefill computes 16 tokens a step, so the pull runs mid-prompt.
  auto prefill = start_instance(model, "prefill", c.transport, tp(c.prefill_tp, c.stream_kv ? 16 : 0));
  auto decode = start_instance(model, "decode", c.transport, tp(c.decode_tp));
  ASSERT_TRUE(agg && prefill && decode) << label(c);
  RouterOptions ro = router_options(prefill->url(), decode->url());
  ro.stream_kv = c.stream_kv;
  auto proxy = start_router(ro);
  ASSERT_TRUE(proxy) << label(c);
  // Around block edges (block size 16): 17 tokens pull one block, 49 three.
  for (int n : {5, 17, 49}) {
    const std::vector<int> prompt = prompt_of(n, 50 + n);
    Completion want = post_completion(agg->url(), completion_body(prompt, kMaxTokens, false));
    ASSERT_EQ(want.http_status, 200) << want.raw;
    ASSERT_EQ(want.tokens.size(), static_cast<size_t>(kMaxTokens)) << want.raw;
    for (bool stream : {false, true}) {
      Completion got = post_completion(proxy->url(), completion_body(prompt, kMaxTokens, stream));
      const std::string what = label(c) + " prompt " + std::to_string(n) + (stream ? " (stream)" : "");
      ASSERT_EQ(got.http_status, 200) << what << ": " << got.raw;
      EXPECT_EQ(got.error, "") << what;
      EXPECT_EQ(got.tokens, want.tokens) << what;
      EXPECT_EQ(got.text, want.text) << what;
    }
  }
  // Each prompt twice: 5 tokens pull their partial block both times; 17 and
  // 49 pull their 1 and 3 full blocks once (then the decode's prefix cache has them).
  EXPECT_EQ(counter(*decode, "baton:kv_blocks_received_total"), 2 + 1 + 3) << label(c);
  EXPECT_EQ(counter(*decode, "baton:kv_transfers_failed_total"), 0) << label(c);
  EXPECT_TRUE(wait_until([&] { return counter(*prefill, "baton:kv_leases") == 0; }, 5.0)) << label(c);
  EXPECT_TRUE(pool_fully_free(*prefill)) << label(c);
  EXPECT_TRUE(pool_fully_free(*decode)) << label(c);
}

class PdTpLayoutTest : public ::testing::TestWithParam<Case> {};

TEST_P(PdTpLayoutTest, MatchesAggAtTp1) { expect_same_as_agg(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Layouts, PdTpLayoutTest,
                         ::testing::Values(Case{"qwen3-tiny", 2, 1, "local", false},
                                           Case{"qwen3-tiny", 1, 2, "shm", false},
                                           Case{"qwen3-tiny", 4, 2, "tcp", false},     // replicated -> split
                                           Case{"llama3-tiny", 1, 4, "local", false},  // split -> replicated
                                           Case{"qwen3-tiny", 2, 1, "tcp", true}, Case{"qwen3-tiny", 1, 2, "shm", true},
                                           Case{"qwen3-moe-tiny", 2, 4, "shm", false},  // both sides relayout
                                           Case{"qwen2-tiny", 4, 1, "tcp", true},
                                           Case{"deepseek-v3-tiny", 2, 1, "tcp", false},
                                           Case{"deepseek-v3-tiny", 1, 2, "local", true}),
                         [](const auto& info) {
                           std::string n = info.param.model + "_tp" + std::to_string(info.param.prefill_tp) + "_to_tp" +
                                           std::to_string(info.param.decode_tp) + "_" + info.param.transport +
                                           (info.param.stream_kv ? "_streamed" : "");
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// A prefill of one model at TP=2 and a decode of another at TP=1: the pull
// is refused, and the error names both sides' layouts.
TEST(PdTpLayoutRefusal, DifferentModelsNameBothLayouts) {
  auto prefill = start_instance(fixture_model("qwen3-tiny"), "prefill", "tcp", tp(2));
  auto decode = start_instance(fixture_model("llama3-tiny"), "decode", "tcp");
  ASSERT_TRUE(prefill && decode);
  const std::vector<int> prompt = prompt_of(20, 3);
  Json params = prefill_direct(*prefill, prompt);
  Completion got = decode_direct(*decode, prompt, params);
  EXPECT_NE(got.http_status, 200) << got.raw;
  EXPECT_NE(got.error.find("is incompatible: model differs"), std::string::npos) << got.raw;
  EXPECT_NE(got.error.find("local layout: model config-"), std::string::npos) << got.raw;
  EXPECT_NE(got.error.find("2 KV heads x 16, block 16, TP=1"), std::string::npos) << got.raw;
  EXPECT_NE(got.error.find("2 KV heads x 32, block 16, TP=2 (1 KV head per rank)"), std::string::npos) << got.raw;
  EXPECT_EQ(counter(*decode, "baton:kv_transfers_failed_total"), 1);
  EXPECT_TRUE(pool_fully_free(*decode));
}

}  // namespace
}  // namespace baton::pd_test

// Same output: for every fixture model, an in-process PD deployment (a
// router, a prefill and a decode instance) over local, shm and tcp (and ucx
// over UCX's tcp and shared memory) returns
// exactly the tokens an agg instance returns for the same greedy requests,
// streamed and not, and with streamed KV (the router starts the decode as
// the prefill's first event comes; the prefill computes a few tokens a step,
// so the pull runs mid-prompt); a repeated prompt pulls only the blocks
// the decode side's prefix cache lacks (shown by the kv counters); and every
// instance's block pool is fully free afterwards.
#include <gtest/gtest.h>

#include <cstdlib>

#include "pd_cluster.h"

namespace baton::pd_test {
namespace {

constexpr int kMaxTokens = 6;

struct Deployment {
  Instance* prefill;
  Instance* decode;
  RouterInstance* proxy;
};

void expect_same_as_agg(Instance& agg, const Deployment& d, const std::vector<int>& prompt, bool stream,
                        const std::string& what) {
  Completion want = post_completion(agg.url(), completion_body(prompt, kMaxTokens, false));
  ASSERT_EQ(want.http_status, 200) << want.raw;
  ASSERT_EQ(want.tokens.size(), static_cast<size_t>(kMaxTokens)) << want.raw;
  Completion got = post_completion(d.proxy->url(), completion_body(prompt, kMaxTokens, stream));
  ASSERT_EQ(got.http_status, 200) << what << ": " << got.raw;
  EXPECT_EQ(got.error, "") << what;
  EXPECT_EQ(got.tokens, want.tokens) << what << (stream ? " (stream)" : "");
  EXPECT_EQ(got.text, want.text) << what << (stream ? " (stream)" : "");
  EXPECT_EQ(got.finish_reason, "length") << what;
}

void check_deployment(Instance& agg, const Deployment& d, const std::string& label) {
  // Prompt lengths around block edges (block size 16): the last token is
  // computed on the decode side, so 17 tokens pull exactly one block.
  for (int n : {2, 5, 17, 35}) {
    for (bool stream : {false, true}) {
      expect_same_as_agg(agg, d, prompt_of(n, 100 + n), stream, label + " prompt " + std::to_string(n));
    }
  }
  // Prefix caching on the decode side: a new 49-token prompt pulls 3 blocks;
  // the same prompt again pulls none (its 3 full blocks are cached locally);
  // a prompt sharing its first 32 tokens pulls only the one block it lacks.
  std::vector<int> d_prompt = prompt_of(49, 7);
  std::vector<int> e_prompt(d_prompt.begin(), d_prompt.begin() + 32);
  for (int t : prompt_of(10, 300)) e_prompt.push_back(t);
  struct Step {
    const std::vector<int>* prompt;
    double pulled, local;
  } steps[] = {{&d_prompt, 3, 0}, {&d_prompt, 0, 3}, {&e_prompt, 1, 2}};
  for (const Step& s : steps) {
    const double rx0 = counter(*d.decode, "baton:kv_blocks_received_total");
    const double hit0 = counter(*d.decode, "baton:kv_blocks_local_hit_total");
    expect_same_as_agg(agg, d, *s.prompt, false, label + " prefix step");
    EXPECT_EQ(counter(*d.decode, "baton:kv_blocks_received_total") - rx0, s.pulled) << label;
    EXPECT_EQ(counter(*d.decode, "baton:kv_blocks_local_hit_total") - hit0, s.local) << label;
  }
  EXPECT_EQ(counter(*d.decode, "baton:kv_transfers_failed_total"), 0) << label;
  // Every lease ended by the decode side's done, none by expiry.
  EXPECT_TRUE(wait_until([&] { return counter(*d.prefill, "baton:kv_leases") == 0; }, 5.0)) << label;
  EXPECT_EQ(counter(*d.prefill, "baton:kv_lease_expirations_total"), 0) << label;
  EXPECT_EQ(counter(*d.prefill, "baton:kv_blocks_pinned"), 0) << label;
  EXPECT_TRUE(pool_fully_free(*d.prefill)) << label << " prefill";
  EXPECT_TRUE(pool_fully_free(*d.decode)) << label << " decode";
}

class PdSameOutputTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PdSameOutputTest, PdOverLocalShmAndTcpMatchesAgg) {
  const std::string model = fixture_model(GetParam());
  auto agg = start_instance(model, "agg");
  ASSERT_TRUE(agg);
  for (const std::string transport : {"local", "shm", "tcp"}) {
    auto prefill = start_instance(model, "prefill", transport);
    auto decode = start_instance(model, "decode", transport);
    ASSERT_TRUE(prefill && decode) << transport;
    auto proxy = start_router(*prefill, *decode);
    ASSERT_TRUE(proxy) << transport;
    check_deployment(*agg, {prefill.get(), decode.get(), proxy.get()}, GetParam() + " " + transport);
  }
  {
    auto prefill = start_instance(model, "prefill", "tcp",
                                  [](InstanceOptions& o) { o.engine.engine.max_num_batched_tokens = 16; });
    auto decode = start_instance(model, "decode", "tcp");
    ASSERT_TRUE(prefill && decode);
    RouterOptions ro = router_options(prefill->url(), decode->url());
    ro.stream_kv = true;
    auto proxy = start_router(ro);
    ASSERT_TRUE(proxy);
    check_deployment(*agg, {prefill.get(), decode.get(), proxy.get()}, GetParam() + " tcp streamed");
    EXPECT_EQ(counter(*decode, "baton:kv_transfers_failed_total"), 0);
  }
  EXPECT_TRUE(pool_fully_free(*agg)) << "agg";
}

// The ucx transport, as CI runs it without RDMA: UCX limited to its tcp, then
// to its shared-memory transports (UCX_TLS, read when each UCX worker starts).
TEST(PdSameOutputUcx, PdOverUcxTcpAndSmMatchesAgg) {
  const std::string model = fixture_model("qwen3-tiny");
  auto agg = start_instance(model, "agg");
  ASSERT_TRUE(agg);
  const char* before = std::getenv("UCX_TLS");
  const std::string saved = before != nullptr ? before : "";
  for (const std::string tls : {"tcp", "sm"}) {
    ::setenv("UCX_TLS", tls.c_str(), 1);
    auto prefill = start_instance(model, "prefill", "ucx");
    auto decode = start_instance(model, "decode", "ucx");
    ASSERT_TRUE(prefill && decode) << tls;
    auto proxy = start_router(*prefill, *decode);
    ASSERT_TRUE(proxy) << tls;
    check_deployment(*agg, {prefill.get(), decode.get(), proxy.get()}, "ucx UCX_TLS=" + tls);
  }
  if (before != nullptr) {
    ::setenv("UCX_TLS", saved.c_str(), 1);
  } else {
    ::unsetenv("UCX_TLS");
  }
}

INSTANTIATE_TEST_SUITE_P(FixtureModels, PdSameOutputTest,
                         ::testing::Values("qwen3-tiny", "qwen2-tiny", "llama3-tiny", "qwen3-moe-tiny",
                                           "deepseek-v3-tiny"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace baton::pd_test

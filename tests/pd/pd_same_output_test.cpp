// Same output: for every fixture model, a PD deployment of real processes
// (baton proxy + baton serve --role prefill + --role decode) over shm and over
// tcp returns exactly the tokens `baton serve --role agg` returns for the same
// greedy requests, streamed and not; a repeated prompt pulls only the blocks
// the decode side's prefix cache lacks (shown by the kv counters); and every
// instance's block pool is fully free afterwards.
#include <gtest/gtest.h>

#include "pd_cluster.h"

namespace baton::pd_test {
namespace {

constexpr int kMaxTokens = 6;

struct Deployment {
  Proc* prefill;
  Proc* decode;
  Proc* proxy;
};

void expect_same_as_agg(Proc& agg, const Deployment& d, const std::vector<int>& prompt, bool stream,
                        const std::string& what) {
  Completion want = post_completion(agg.url(), completion_body(prompt, kMaxTokens, false));
  ASSERT_EQ(want.http_status, 200) << want.raw;
  ASSERT_EQ(want.tokens.size(), static_cast<size_t>(kMaxTokens)) << want.raw;
  Completion got = post_completion(d.proxy->url(), completion_body(prompt, kMaxTokens, stream));
  ASSERT_EQ(got.http_status, 200) << what << ": " << got.raw << d.decode->log();
  EXPECT_EQ(got.error, "") << what;
  EXPECT_EQ(got.tokens, want.tokens) << what << (stream ? " (stream)" : "");
  EXPECT_EQ(got.text, want.text) << what << (stream ? " (stream)" : "");
  EXPECT_EQ(got.finish_reason, "length") << what;
}

double counter(const Proc& p, const std::string& name) { return metric(p.url(), name).value_or(-1); }

void check_deployment(Proc& agg, const Deployment& d, const std::string& label) {
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

TEST_P(PdSameOutputTest, PdOverShmAndTcpMatchesAgg) {
  const std::string model = fixture_model(GetParam());
  std::string error;
  auto procs = spawn_all({serve_args(model, "agg"),
                          serve_args(model, "prefill", {"--kv-transport", "shm"}),
                          serve_args(model, "decode", {"--kv-transport", "shm"}),
                          serve_args(model, "prefill", {"--kv-transport", "tcp"}),
                          serve_args(model, "decode", {"--kv-transport", "tcp"})},
                         &error);
  ASSERT_EQ(procs.size(), 5u) << error;
  auto proxies = spawn_all({proxy_args(*procs[1], *procs[2]), proxy_args(*procs[3], *procs[4])}, &error);
  ASSERT_EQ(proxies.size(), 2u) << error;
  // The proxies' first health checks.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  check_deployment(*procs[0], {procs[1].get(), procs[2].get(), proxies[0].get()}, GetParam() + " shm");
  check_deployment(*procs[0], {procs[3].get(), procs[4].get(), proxies[1].get()}, GetParam() + " tcp");
  EXPECT_TRUE(pool_fully_free(*procs[0])) << "agg";
  for (auto& p : proxies) EXPECT_EQ(p->terminate(), 0) << p->log();
  for (auto& p : procs) EXPECT_EQ(p->terminate(), 0) << p->log();
}

INSTANTIATE_TEST_SUITE_P(FixtureModels, PdSameOutputTest,
                         ::testing::Values("qwen3-tiny", "qwen2-tiny", "llama3-tiny", "qwen3-moe-tiny"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace baton::pd_test

// Issue 22, finding 2: a plain bench at 1 req/s measured TTFT p90 541 ms; a search a minute later
// re-sent the same prompts (the same default seed), hit the server's prefix cache, measured 105 ms
// and concluded the rate sustainable, without a word. `baton bench` now draws a fresh seed per
// run (printed, recorded, and repeatable with --seed), and when the server's prefix-cache hits
// rise on a workload whose prompts share no prefix, the console, summary.json and the report say
// so. The SimServer counts a repeated prompt's tokens as prefix-cache hits on its /metrics.
#include <gtest/gtest.h>

#include <regex>

#include "bench/sim_server.h"
#include "common/json.h"
#include "support/test_process.h"

namespace baton::bench {
namespace {

using baton::testing::read_whole_file;
using baton::testing::run_baton;

std::vector<std::string> bench_args(const std::string& url) {
  return {"bench", "--url",  url,   "--input-len",  "32",   "--output-len", "2",           "--num-requests",
          "8",     "--rate", "200", "--vocab-size", "1000", "--slo",        "ttft:p90<1s", "--no-progress"};
}

// The seed a run printed ("seed N (drawn for this run ..."), or "" when it printed none.
std::string drawn_seed(const std::string& out) {
  std::smatch m;
  return std::regex_search(out, m, std::regex("seed ([0-9]+) \\(drawn for this run")) ? m[1].str() : "";
}

TEST(BenchPrefixCacheEndToEndTest, RunsDrawFreshSeedsAndAPinnedSeedsCacheHitsAreReported) {
  SimServer server(SimServerOptions{});
  ASSERT_TRUE(server.start().is_ok());
  // Two runs without --seed: different prompts, no hit, no warning.
  std::string first, second;
  ASSERT_EQ(run_baton(bench_args(server.url()), &first), 0) << first;
  ASSERT_EQ(run_baton(bench_args(server.url()), &second), 0) << second;
  ASSERT_NE(drawn_seed(first), "") << first;
  ASSERT_NE(drawn_seed(second), "") << second;
  EXPECT_NE(drawn_seed(first), drawn_seed(second));
  EXPECT_EQ(server.prefix_cache_hits(), 0) << "the second run resent the first run's prompts";
  EXPECT_EQ(second.find("prefix-cache hit"), std::string::npos) << second;

  // The same seed twice, on purpose: the second run measures a warm cache, and says so.
  const std::string dir = baton::testing::test_tmp_dir() + "/bench_prefix_cache";
  auto pinned = bench_args(server.url());
  pinned.insert(pinned.end(), {"--seed", drawn_seed(first)});
  std::string again;
  ASSERT_EQ(run_baton(pinned, &again), 0) << again;
  EXPECT_EQ(drawn_seed(again), "") << "a pinned seed is not drawn";
  const int64_t hits = server.prefix_cache_hits();
  EXPECT_EQ(hits, 8 * 32) << "every prompt of the first run came again";
  EXPECT_NE(again.find("WARNING: the server reported 256 prefix-cache hit tokens (100% of the 256 prompt tokens "
                       "sent) on a workload whose prompts share no prefix"),
            std::string::npos)
      << again;
  pinned.insert(pinned.end(), {"--out", dir});
  ASSERT_EQ(run_baton(pinned, &again), 0) << again;
  auto doc = read_json_file(dir + "/summary.json");
  ASSERT_TRUE(doc.is_ok()) << doc.status().to_string();
  EXPECT_EQ((*doc)["config"]["seed"].get<uint64_t>(), std::stoull(drawn_seed(first)));
  EXPECT_EQ((*doc)["config"]["seed_pinned"], true);
  const Json& check = (*doc)["runs"][0]["prefix_cache"];
  EXPECT_EQ(check["checked"], true);
  EXPECT_EQ(check["hit_tokens"], 256.0);
  EXPECT_EQ(check["expected"], false);
  std::string html = read_whole_file(dir + "/report.html");
  EXPECT_NE(html.find("<div class=\"warn\"><b>default, "), std::string::npos);
  EXPECT_NE(html.find("prefix-cache hit tokens (100% of the 256 prompt tokens sent)"), std::string::npos);
}

}  // namespace
}  // namespace baton::bench

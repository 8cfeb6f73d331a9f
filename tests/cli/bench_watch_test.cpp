// `baton bench --watch`: a run against a real `baton serve` also samples the
// server's /metrics, prints its peaks and writes the timeline with --out.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "common/json.h"
#include "common/metrics_text.h"
#include "http/http_client.h"
#include "server/serve_process.h"

namespace baton {
namespace {

using namespace baton::testing;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(BenchWatchTest, ARunSamplesTheWatchedInstanceAndWritesItsTimeline) {
  std::string model = tiny_model_dir();
  ASSERT_FALSE(model.empty());
  std::string error;
  auto server = ServeProcess::start({"--model", model, "--served-model-name", "m", "--num-threads", "1"}, &error);
  ASSERT_TRUE(server) << error;
  const std::string dir = test_tmp_dir() + "/bench_watch";
  const std::string out = dir + "/out";
  const std::string log = dir + "/bench.log";
  run_command("rm -rf " + dir + " && mkdir -p " + dir);
  std::string cmd = std::string(BATON_BINARY) + " bench --url " + server->url() +
                    " --model m --prompt-format ids --vocab-size 512 --input-len 16 --output-len 8 --rate 20 --num-requests 12"
                    " --no-progress --watch agg-0=" +
                    server->url() + " --out " + out + " > " + log + " 2>&1";
  ASSERT_EQ(run_command(cmd), 0) << read_file(log);
  std::string printed = read_file(log);
  EXPECT_NE(printed.find("12 requests, 12 ok, 0 failed"), std::string::npos) << printed;
  EXPECT_NE(printed.find("instances during the run (metrics.jsonl):\n    agg-0 (agg): waiting max "),
            std::string::npos)
      << printed;
  std::ifstream timeline(out + "/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(timeline, line); ++lines) {
    Json j = Json::parse(line);
    EXPECT_EQ(j["instance"], "agg-0");
    EXPECT_EQ(j["run"], 0);
    EXPECT_TRUE(j.contains("running") && j.contains("kv_usage")) << line;
  }
  EXPECT_GE(lines, 2);  // a first and a last sample at least

  // A watch list that is not URLs is refused before anything runs.
  const std::string bad_log = dir + "/bad.log";
  EXPECT_NE(run_command(std::string(BATON_BINARY) + " bench --url " + server->url() +
                        " --watch prefill-0=localhost:8100 --num-requests 2 > " + bad_log + " 2>&1"),
            0);
  std::string bad = read_file(bad_log);
  EXPECT_NE(bad.find("--watch 'prefill-0=localhost:8100': 'localhost:8100' is not an http URL"), std::string::npos)
      << bad;
}

// Each rate of a --sweep draws its own prompts (as a search's trials do), so a
// repeated rate measures the server, not its prefix cache. The model and its
// vocabulary (512 here, where the bench's fallback is Qwen3's 151,936) come
// from GET /v1/models.
TEST(BenchWatchTest, SweepRunsDrawFreshPromptsSoARepeatedRateMissesThePrefixCache) {
  std::string model = tiny_model_dir();
  ASSERT_FALSE(model.empty());
  std::string error;
  auto server = ServeProcess::start({"--model", model, "--served-model-name", "m", "--num-threads", "1"}, &error);
  ASSERT_TRUE(server) << error;
  const std::string log = test_tmp_dir() + "/bench_sweep_seeds.log";
  std::string cmd = std::string(BATON_BINARY) + " bench --url " + server->url() +
                    " --prompt-format ids --input-len 48 --output-len 2 --sweep 30,30 --num-requests 10"
                    " --no-progress > " + log + " 2>&1";
  ASSERT_EQ(run_command(cmd), 0) << read_file(log);
  auto r = http::fetch(server->url() + "/metrics", "GET", {}, 5.0);
  ASSERT_TRUE(r.is_ok());
  auto m = sum_metrics_by_name(r->body);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->at("baton:prompt_tokens_total"), 2 * 10 * 48) << read_file(log);
  EXPECT_GT(m->at("baton:prefix_cache_queries_total"), 0);
  EXPECT_EQ(m->at("baton:prefix_cache_hits_total"), 0) << "the second run resent the first run's prompts";
}

}  // namespace
}  // namespace baton

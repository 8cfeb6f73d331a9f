// The sweep's metrics sampler against servers that answer /metrics: well,
// with text that is not metrics, or not at all.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "common/json.h"
#include "deploy/metrics_sampler.h"
#include "deploy/test_dir.h"
#include "http/http_server.h"
#include "support/wait.h"

namespace baton::deploy {
namespace {

// A /metrics endpoint whose values the test sets.
class FakeInstance {
 public:
  explicit FakeInstance(bool garbage = false) : garbage_(garbage) {
    HttpServerOptions o;
    o.port = 0;
    o.num_io_threads = 1;
    server_ = std::make_unique<HttpServer>(o, [this](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
      HttpResponse r;
      r.content_type = "text/plain; version=0.0.4";
      if (req.path != "/metrics") {
        r.status = 404;
      } else if (garbage_) {
        r.body = "<html>not metrics</html>\n";
      } else {
        r.body = fmt::format(
            "# TYPE baton:num_requests_waiting gauge\n"
            "baton:num_requests_waiting{{model_name=\"m\"}} {}\n"
            "baton:num_requests_running{{model_name=\"m\"}} {}\n"
            "baton:kv_cache_usage_perc{{model_name=\"m\"}} {}\n"
            "baton:num_preemptions_total{{model_name=\"m\"}} {}\n"
            "baton:other_thing 5\n",
            waiting.load(), running.load(), kv_usage.load(), preemptions.load());
      }
      ex->reply(std::move(r));
    });
    EXPECT_TRUE(server_->start().is_ok());
  }
  ~FakeInstance() { server_->stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  std::atomic<int> waiting{0}, running{0}, preemptions{2};
  std::atomic<double> kv_usage{0.1};

 private:
  bool garbage_;
  std::unique_ptr<HttpServer> server_;
};

std::vector<Json> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<Json> out;
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

// The samples of `instance` written so far (the sampler flushes each round;
// a line still being written is skipped).
int num_samples_of(const std::string& path, const std::string& instance, int waiting = -1) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("instance", "") != instance) continue;
    if (waiting < 0 || j.value("waiting", -1.0) == waiting) ++n;
  }
  return n;
}

TEST(MetricsSamplerTest, RecordsATimelineAndEachInstancesPeaksAndCounterGrowth) {
  const std::string dir = fresh_test_dir("baton_metrics_sampler", "timeline").string();
  FakeInstance prefill, garbage(/*garbage=*/true);
  const std::string path = dir + "/w.metrics.jsonl";
  MetricsSampler s({{"prefill-0", "prefill", prefill.url()},
                    {"decode-0", "decode", garbage.url()},
                    {"gone", "decode", "http://127.0.0.1:1"}},  // nothing listens there
                   {.interval_s = 0.05, .scrape_timeout_s = 0.5, .out_path = path, .tags = {{"trial", 4}}});
  ASSERT_TRUE(s.start().is_ok());
  // Two rounds of the first values, then two of the second: a wait on the
  // samples written, not on time.
  ASSERT_TRUE(baton::testing::wait_until([&] { return num_samples_of(path, "prefill-0") >= 2; }, 10.0));
  prefill.waiting = 12;
  prefill.running = 30;
  prefill.kv_usage = 0.45;
  prefill.preemptions = 5;
  ASSERT_TRUE(baton::testing::wait_until([&] { return num_samples_of(path, "prefill-0", 12) >= 2; }, 10.0));
  prefill.waiting = 1;  // the peak stays
  auto loads = s.stop();

  ASSERT_EQ(loads.size(), 3u);
  const InstanceLoad& p = loads[0];
  EXPECT_EQ(p.name, "prefill-0");
  EXPECT_GE(p.num_samples, 4);
  EXPECT_EQ(p.num_failed, 0);
  EXPECT_EQ(p.max_waiting, 12);
  EXPECT_EQ(p.max_running, 30);
  EXPECT_DOUBLE_EQ(p.max_kv_usage, 0.45);
  EXPECT_EQ(p.preemptions, 3);  // 2 -> 5 over the window
  // Unreadable metrics and no answer are failed samples that say why; nothing throws.
  EXPECT_EQ(loads[1].num_samples, 0);
  EXPECT_GE(loads[1].num_failed, 2);
  EXPECT_NE(loads[1].last_error.find("no metric name"), std::string::npos) << loads[1].last_error;
  EXPECT_EQ(loads[2].num_samples, 0);
  EXPECT_GE(loads[2].num_failed, 2);
  EXPECT_FALSE(loads[2].last_error.empty());

  auto lines = read_lines(path);
  ASSERT_GE(lines.size(), 3u * 4);
  int prefill_lines = 0;
  double last_t = -1;
  for (const Json& j : lines) {
    EXPECT_EQ(j["trial"], 4);
    if (j["instance"] != "prefill-0") {
      EXPECT_TRUE(j.contains("error")) << j.dump();
      continue;
    }
    ++prefill_lines;
    EXPECT_EQ(j["role"], "prefill");
    EXPECT_GE(j["t_s"].get<double>(), last_t);
    last_t = j["t_s"].get<double>();
    EXPECT_TRUE(j.contains("waiting") && j.contains("running") && j.contains("kv_usage") && j.contains("preemptions"))
        << j.dump();
    EXPECT_FALSE(j.contains("other_thing"));  // only the kept series
  }
  EXPECT_EQ(prefill_lines, p.num_samples);

  std::string text = format_instance_loads(loads);
  EXPECT_NE(
      text.find("prefill-0 (prefill): waiting max 12, running max 30, KV max 45.0%, KV leases max 0, 3 preemptions"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("decode-0 (decode): no sample"), std::string::npos) << text;
  Json j = instance_loads_json(loads);
  EXPECT_EQ(j[0]["max_waiting"], 12);
  EXPECT_EQ(j[2]["samples"], 0);
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

TEST(MetricsSamplerTest, AnOutputThatCannotBeOpenedIsAnErrorAndStopIsSafe) {
  MetricsSampler s({}, {.out_path = "/nonexistent-dir/x/metrics.jsonl"});
  Status st = s.start();
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("/nonexistent-dir/x/metrics.jsonl"), std::string::npos);
  EXPECT_TRUE(s.stop().empty());
  MetricsSamplerOptions zero;
  zero.interval_s = 0;
  MetricsSampler bad({}, zero);
  EXPECT_FALSE(bad.start().is_ok());
}

}  // namespace
}  // namespace baton::deploy

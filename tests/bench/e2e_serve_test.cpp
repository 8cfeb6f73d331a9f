// End to end: the `baton bench` CLI against a real server on the CPU (an
// in-process instance, instance/instance.h, of a tiny random Qwen3 with the
// real Qwen3 tokenizer), producing JSON, JSONL, CSV and the HTML report, then
// a headless-Chromium screenshot of the report.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/json.h"
#include "common/metrics_text.h"
#include "http/http_client.h"
#include "instance/instance.h"
#include "support/test_process.h"

namespace baton::bench {
namespace {

namespace fs = std::filesystem;
using baton::testing::run_shell;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs a command line to completion; returns its exit status, output in `out`.
int run(const std::string& cmd, std::string* out = nullptr) { return run_shell(cmd, out); }

// An in-process `baton serve` for the bench to run against.
std::unique_ptr<instance::Instance> start_server(const std::string& model, const std::string& name) {
  instance::InstanceOptions o;
  o.engine.model = model;
  o.engine.num_threads = 1;
  o.server.served_model_name = name;
  o.server.port = 0;
  auto started = instance::Instance::start(o);
  EXPECT_TRUE(started.is_ok()) << started.status().to_string();
  return started.is_ok() ? std::move(started).value() : nullptr;
}

// `doc` with one more trial at twice the last one's rate, stopped early (a search's FAIL).
Json with_a_stopped_trial(Json doc) {
  Json stopped = doc["runs"].back();
  stopped["target_rate_rps"] = stopped["target_rate_rps"].get<double>() * 2;
  stopped["slo"]["stopped_early"] = true;
  stopped["slo"]["sustainable"] = false;
  stopped["slo"]["first_broken"] = "ttft:p90<2s";
  stopped["slo"]["stop_reason"] = "ttft:p90<2s: 9 of 20 measured requests already took >= 2 s";
  doc["runs"].push_back(stopped);
  return doc;
}

// Issue 22, finding 5: the report plotted early-stopped trials (the goodput line zigzagged
// 0.76 -> 0 -> 0.66), marked pass/fail only in its table, and drew CDFs without saying which
// rate they showed. `page` is the report of `doc` as headless Chromium left it after its scripts
// ran: the curves hold the completed trials only, every chart names the SLO, the trials chart
// marks the broken one, and the CDFs name their run's rate.
void expect_report_layout(const Json& doc, const std::string& page) {
  std::set<double> completed_rates;
  for (const auto& r : doc["runs"]) {
    if (!r["slo"].value("stopped_early", false)) completed_rates.insert(r["target_rate_rps"].get<double>());
  }
  ASSERT_LT(completed_rates.size(), doc["runs"].size()) << "no stopped trial to leave out";
  // canvas id -> its attributes, as the scripts left them
  auto canvas = [&](const std::string& id) {
    size_t at = page.find("<canvas id=\"" + id + "\"");
    return at == std::string::npos ? std::string() : page.substr(at, page.find('>', at) - at);
  };
  for (const char* id : {"c-ttft", "c-tpot", "c-e2e", "c-max", "c-good", "d-ttft", "d-tpot", "d-e2e"}) {
    EXPECT_NE(canvas(id).find("SLO ttft:p90"), std::string::npos) << id << ": " << canvas(id);
  }
  // The latency and goodput curves: two lines (p50 and p90; goodput and throughput) of one
  // point per completed rate; the stopped trial is on none of them.
  const std::string on_curves = "data-points=\"" + std::to_string(2 * completed_rates.size()) + "\"";
  EXPECT_NE(canvas("c-ttft").find(on_curves), std::string::npos) << canvas("c-ttft");
  EXPECT_NE(canvas("c-good").find(on_curves), std::string::npos) << canvas("c-good");
  // The trials chart shows every trial (offered and requested), the stopped one marked broken.
  EXPECT_NE(canvas("c-max").find("data-points=\"" + std::to_string(2 * doc["runs"].size()) + "\""), std::string::npos)
      << canvas("c-max");
  EXPECT_EQ(canvas("c-max").find("data-broken=\"0\""), std::string::npos) << canvas("c-max");
  EXPECT_NE(canvas("d-ttft").find("req/s offered"), std::string::npos) << canvas("d-ttft");
  EXPECT_NE(page.find("max sustainable offered load"), std::string::npos);
}

TEST(BenchEndToEndTest, AgainstRealBatonServeWithReportScreenshot) {
  const std::string baton = BATON_BINARY;
  fs::path tmp = fs::temp_directory_path() / ("baton_bench_e2e_" + std::to_string(getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  std::string out;
  ASSERT_EQ(run(baton + " init-model --preset tiny-qwen3 --out " + (tmp / "model").string(), &out), 0) << out;
  ASSERT_TRUE(fs::exists(tmp / "model" / "tokenizer.json")) << out;

  auto server = start_server((tmp / "model").string(), "tiny");
  ASSERT_TRUE(server);
  const std::string url = server->url();

  // A short search: 3 trials of 1 s, so that the report has a curve.
  const fs::path res = tmp / "out";
  std::string cmd = baton + " bench --url " + url +
                    " --input-len 16:48 --output-len 8 --vocab-size 512 --duration-s 1 --warmup 2"
                    " --slo 'ttft:p90<2s,tpot:p90<500ms,e2e:p99<10s' --search --search-start 8"
                    " --search-max-trials 3 --label cpu-tiny --no-progress --out " +
                    res.string();
  int rc = run(cmd, &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("TTFT  = first content-bearing chunk - send"), std::string::npos) << out;
  EXPECT_NE(out.find("max sustainable rate"), std::string::npos) << out;

  // JSON summary
  auto doc = read_json_file((res / "summary.json").string());
  ASSERT_TRUE(doc.is_ok()) << doc.status().to_string();
  EXPECT_EQ((*doc)["format"], "baton-bench-result/1");
  EXPECT_EQ((*doc)["label"], "cpu-tiny");
  ASSERT_GE((*doc)["runs"].size(), 2u);
  const auto& first = (*doc)["runs"][0]["metrics"];
  EXPECT_GT(first["num_ok"].get<int>(), 0) << first.dump(1);
  EXPECT_EQ(first["num_failed"].get<int>(), 0) << first.dump(1);
  EXPECT_EQ(first["num_without_usage"].get<int>(), 0);
  // Exact output lengths: 8 tokens per request, from the server's usage.
  EXPECT_EQ(first["total_output_tokens"].get<int64_t>(), 8 * first["num_ok"].get<int64_t>());
  EXPECT_GT(first["ttft_ms"]["p50"].get<double>(), 0.0);
  EXPECT_GT(first["tpot_ms"]["p50"].get<double>(), 0.0);
  EXPECT_EQ((*doc)["search"]["num_trials"].get<int>(), static_cast<int>((*doc)["runs"].size()));
  EXPECT_FALSE((*doc)["cdf"]["ttft_ms"].empty());

  // JSONL records and CSV
  std::ifstream jl(res / "requests.jsonl");
  std::string line;
  size_t num_lines = 0, num_ok = 0;
  while (std::getline(jl, line)) {
    auto j = parse_json(line);
    ASSERT_TRUE(j.is_ok()) << line;
    ++num_lines;
    if ((*j)["ok"].get<bool>()) {
      ++num_ok;
      EXPECT_EQ((*j)["output_tokens"], 8);
      // One chunk per token; tokens that decode to no text yet (a partial UTF-8
      // sequence) carry no content, so at most 7 gaps between content chunks.
      EXPECT_LE((*j)["itl_ms"].size(), 7u) << line;
      EXPECT_GT((*j)["ttft_ms"].get<double>(), 0.0) << line;
    }
  }
  EXPECT_GT(num_lines, 4u);
  EXPECT_EQ(num_ok, num_lines);
  std::string csv = slurp(res / "runs.csv");
  EXPECT_EQ(csv.rfind("label,run,target_rate_rps", 0), 0u);
  EXPECT_EQ(static_cast<size_t>(std::count(csv.begin(), csv.end(), '\n')), (*doc)["runs"].size() + 1);

  // A self-contained report: Chart.js inlined, nothing fetched.
  std::string html = slurp(res / "report.html");
  EXPECT_NE(html.find("Chart.js v4"), std::string::npos);
  EXPECT_NE(html.find("new Chart("), std::string::npos);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  EXPECT_EQ(html.find("<link "), std::string::npos);

  // compare: of itself with a clear error for duplicate labels; of one file, fine.
  ASSERT_NE(
      run(baton + " bench compare " + (res / "summary.json").string() + " " + (res / "summary.json").string(), &out),
      0);
  EXPECT_NE(out.find("share the label 'cpu-tiny'"), std::string::npos) << out;
  ASSERT_EQ(run(baton + " bench compare " + (res / "summary.json").string() + " --out " + (tmp / "cmp").string(), &out),
            0)
      << out;
  EXPECT_NE(out.find("cpu-tiny"), std::string::npos);

  // Headless Chromium: a screenshot of the report, with one more trial that stopped early, and
  // its page as the scripts left it.
  const Json shown = with_a_stopped_trial(*doc);
  ASSERT_TRUE(write_file((tmp / "shown.json").string(), shown.dump()).is_ok());
  ASSERT_EQ(run(baton + " bench compare " + (tmp / "shown.json").string() + " --out " + (tmp / "shown").string(), &out),
            0)
      << out;
  const std::string chromium = "/usr/bin/chromium";
  ASSERT_TRUE(fs::exists(chromium)) << "Chromium is missing: scripts/install-deps.sh installs Debian's chromium";
  fs::create_directories(tmp / "chrome-profile");
  const fs::path png = tmp / "report.png";
  const fs::path dom = tmp / "dom.html";
  std::string shot = "cd " + tmp.string() + " && timeout 120 " + chromium +
                     " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                     " --disable-background-networking --disable-component-update --disable-sync"
                     " --user-data-dir=" +
                     (tmp / "chrome-profile").string() + " --screenshot=" + png.string() +
                     " --window-size=1400,2400 --dump-dom file://" + (tmp / "shown" / "report.html").string() + " > " +
                     dom.string();
  run(shot, &out);
  ASSERT_TRUE(fs::exists(png)) << out;
  expect_report_layout(shown, slurp(dom));
  std::string bytes = slurp(png);
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  // A blank 1400x2400 page compresses to a few kB; drawn charts and tables do not.
  EXPECT_GT(bytes.size(), 60'000u) << "the screenshot looks empty: " << png;
  std::error_code ec;
  // Kept beside the binary (the build folder), best effort, for a human to look at.
  fs::copy_file(png, fs::path(BATON_BINARY).parent_path() / "bench_e2e_report.png",
                fs::copy_options::overwrite_existing, ec);
  if (!HasFailure()) fs::remove_all(tmp);
}

// `baton bench --watch`: a run against a real server also samples the
// server's /metrics, prints its peaks and writes the timeline with --out.
TEST(BenchWatchTest, ARunSamplesTheWatchedInstanceAndWritesItsTimeline) {
  std::string model = baton::testing::tiny_model_dir();
  ASSERT_FALSE(model.empty());
  auto server = start_server(model, "m");
  ASSERT_TRUE(server);
  const std::string dir = baton::testing::test_tmp_dir() + "/bench_watch";
  const std::string out = dir + "/out";
  const std::string log = dir + "/bench.log";
  run("rm -rf " + dir + " && mkdir -p " + dir);
  std::string cmd =
      std::string(BATON_BINARY) + " bench --url " + server->url() +
      " --model m --prompt-format ids --vocab-size 512 --input-len 16 --output-len 8 --rate 20 --num-requests 12"
      " --no-progress --watch agg-0=" +
      server->url() + " --out " + out + " > " + log + " 2>&1";
  ASSERT_EQ(run(cmd), 0) << slurp(log);
  std::string printed = slurp(log);
  EXPECT_NE(printed.find("12 requests, 12 ok, 0 failed"), std::string::npos) << printed;
  EXPECT_NE(printed.find("instances during the run (metrics.jsonl):\n    agg-0 (agg): waiting max "), std::string::npos)
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
  EXPECT_NE(run(std::string(BATON_BINARY) + " bench --url " + server->url() +
                " --watch prefill-0=localhost:8100 --num-requests 2 > " + bad_log + " 2>&1"),
            0);
  std::string bad = slurp(bad_log);
  EXPECT_NE(bad.find("--watch 'prefill-0=localhost:8100': 'localhost:8100' is not an http URL"), std::string::npos)
      << bad;
}

// Each rate of a --sweep draws its own prompts (as a search's trials do), so a
// repeated rate measures the server, not its prefix cache. The model and its
// vocabulary (512 here, where the bench's fallback is Qwen3's 151,936) come
// from GET /v1/models.
TEST(BenchWatchTest, SweepRunsDrawFreshPromptsSoARepeatedRateMissesThePrefixCache) {
  std::string model = baton::testing::tiny_model_dir();
  ASSERT_FALSE(model.empty());
  auto server = start_server(model, "m");
  ASSERT_TRUE(server);
  const std::string log = baton::testing::test_tmp_dir() + "/bench_sweep_seeds.log";
  std::string cmd = std::string(BATON_BINARY) + " bench --url " + server->url() +
                    " --prompt-format ids --input-len 48 --output-len 2 --sweep 30,30 --num-requests 10"
                    " --no-progress > " +
                    log + " 2>&1";
  ASSERT_EQ(run(cmd), 0) << slurp(log);
  auto r = http::fetch(server->url() + "/metrics", "GET", {}, 5.0);
  ASSERT_TRUE(r.is_ok());
  auto m = sum_metrics_by_name(r->body);
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->at("baton:prompt_tokens_total"), 2 * 10 * 48) << slurp(log);
  EXPECT_GT(m->at("baton:prefix_cache_queries_total"), 0);
  EXPECT_EQ(m->at("baton:prefix_cache_hits_total"), 0) << "the second run resent the first run's prompts";
}

}  // namespace
}  // namespace baton::bench

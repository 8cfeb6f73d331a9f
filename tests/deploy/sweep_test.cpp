// `baton sweep`: the experiment file, and a real sweep on the CPU (tiny model; agg x1, agg x2 and PD 1P1D over shm; one
// workload) that writes its results, resumes without running anything again,
// and leaves no process behind.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "common/json.h"
#include "deploy/child_process.h"
#include "deploy/experiment.h"
#include "deploy/kv_segments.h"
#include "deploy/sweep.h"
#include "deploy/sweep_report.h"
#include "deploy/test_dir.h"
#include "support/wait.h"

namespace baton::deploy {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& tag) { return fresh_test_dir("baton-sweep-test", tag); }

constexpr const char* kTwoAgg = R"(
name: exp
deployments:
  - {name: agg-1, spec: {mode: agg, replicas: 1}}
  - {name: agg-2, spec: {mode: agg, replicas: 2, router: {port: 8010}, base_port: 8110}}
workloads:
  - {name: short, input_len: 64, output_len: 8, slo: "ttft:p90<500ms,tpot:p90<50ms"}
  - {name: chat, kind: multiturn, turns: 3, input_len: "32:64", output_len: 16, slo: "e2e:p99<5s",
     deployments: [agg-2], start_rate: 4, precision: 0.2}
search: {start_rate: 2, num_requests: 40, warmup: 4, max_trials: 7, seed: 3}
)";

TEST(ExperimentTest, WarmupSecondsParsedAndChecked) {
  const std::string base = R"(
deployments:
  - {name: agg-1, spec: {mode: agg, replicas: 1}}
workloads:
  - {name: w, input_len: 64, output_len: 8, duration_s: 20, slo: "ttft:p90<500ms", WARM}
)";
  auto with = [&](const std::string& warm) {
    std::string y = base;
    y.replace(y.find("WARM"), 4, warm);
    return Experiment::parse_yaml(y);
  };
  auto ok = with("warmup_s: 5");
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_DOUBLE_EQ(ok->workloads[0].warmup_s, 5.0);
  auto negative = with("warmup_s: -1");
  ASSERT_FALSE(negative.is_ok());
  EXPECT_NE(negative.status().message().find("warmup_s"), std::string::npos) << negative.status().message();
  auto whole = with("warmup_s: 20");
  ASSERT_FALSE(whole.is_ok());
  EXPECT_NE(whole.status().message().find("nothing"), std::string::npos) << whole.status().message();
}

TEST(ExperimentTest, ParsesDeploymentsWorkloadsAndSearchDefaults) {
  auto e = Experiment::parse_yaml(kTwoAgg);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  ASSERT_EQ(e->deployments.size(), 2u);
  EXPECT_EQ(e->deployments[0].name, "agg-1");
  EXPECT_EQ(e->deployments[0].spec.agg.replicas, 1);
  EXPECT_EQ(e->deployments[1].spec.router_port, 8010);
  EXPECT_EQ(e->baseline, "agg-1");  // the first by default
  ASSERT_EQ(e->workloads.size(), 2u);
  const auto& shortw = e->workloads[0];
  EXPECT_EQ(shortw.options.input_len.min, 64);
  EXPECT_EQ(shortw.options.num_requests, 40u);
  EXPECT_EQ(shortw.num_warmup, 4u);
  EXPECT_EQ(shortw.options.seed, 3u);
  EXPECT_DOUBLE_EQ(shortw.search.start_rate, 2.0);
  EXPECT_EQ(shortw.search.max_trials, 7);
  ASSERT_EQ(shortw.slo.targets.size(), 2u);
  const auto& chat = e->workloads[1];
  EXPECT_EQ(chat.options.kind, "multiturn");
  EXPECT_DOUBLE_EQ(chat.search.start_rate, 4.0);  // the workload's own beats the default
  EXPECT_DOUBLE_EQ(chat.search.precision, 0.2);
  EXPECT_TRUE(e->runs(e->deployments[1], chat));
  EXPECT_FALSE(e->runs(e->deployments[0], chat));
  EXPECT_TRUE(e->runs(e->deployments[0], shortw));
  EXPECT_EQ(chat.describe["turns"], 3);
}

// The workloads are read through the bench's option schema: the same defaults
// as `baton bench` (200 requests), and a count set only in `search:` does not
// stop a workload's own duration_s from sending for that long.
TEST(ExperimentTest, WorkloadsReadThroughTheSharedSchema) {
  auto e = Experiment::parse_yaml(R"(
deployments:
  - {name: agg-1, spec: {mode: agg, replicas: 1}}
workloads:
  - {name: plain, slo: "ttft:p90<1s"}
  - {name: timed, duration_s: 20, slo: "ttft:p90<1s"}
  - {name: both, duration_s: 20, num_requests: 30, arrival: constant, slo: "ttft:p90<1s", attainment: 0.9}
search: {seed: 5, num_requests: 60}
load: {max_concurrency: 3}
)");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  const auto& plain = e->workloads[0];
  EXPECT_EQ(plain.options.num_requests, 60u);  // search's default
  EXPECT_EQ(plain.options.seed, 5u);
  EXPECT_EQ(plain.max_concurrency, 3u);
  EXPECT_EQ(e->workloads[1].options.num_requests, 0u);
  EXPECT_EQ(e->workloads[2].options.num_requests, 30u);
  EXPECT_EQ(e->workloads[2].options.arrival.kind, bench::ArrivalKind::kConstant);
  EXPECT_DOUBLE_EQ(e->workloads[2].slo.min_attainment, 0.9);
  auto bare = Experiment::parse_yaml(R"(
deployments:
  - {name: agg-1, spec: {mode: agg, replicas: 1}}
workloads:
  - {name: plain, slo: "ttft:p90<1s"}
)");
  ASSERT_TRUE(bare.is_ok()) << bare.status().to_string();
  EXPECT_EQ(bare->workloads[0].options.num_requests, 200u);  // as `baton bench --num-requests`
  auto bad = Experiment::parse_yaml(R"(
deployments:
  - {name: agg-1, spec: {mode: agg, replicas: 1}}
workloads:
  - {name: w, prompt_format: words, slo: "ttft:p90<1s"}
)");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("workload 'w': prompt_format"), std::string::npos) << bad.status().message();
}

TEST(ExperimentTest, DeploymentFromAFileRenamedAndRestricted) {
  fs::path dir = fresh_dir("file");
  std::ofstream(dir / "pd.yaml") << "name: pd\nmode: pd\nprefill: 1\ndecode: 2\nkv_transport: tcp\n";
  std::string text =
      "deployments:\n  - pd.yaml\n  - {path: pd.yaml, name: pd-again, workloads: [w]}\n"
      "workloads: [{name: w, slo: \"ttft:p90<1s\"}, {name: v, slo: \"ttft:p90<1s\"}]\n"
      "baseline: pd-again\ncomparisons: [{deployment: pd, against: pd-again}]\n";
  std::ofstream(dir / "exp.yaml") << text;
  auto e = Experiment::load((dir / "exp.yaml").string());  // pd.yaml found beside the experiment
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ(e->deployments[0].name, "pd");
  EXPECT_EQ(e->deployments[1].name, "pd-again");
  EXPECT_EQ(e->deployments[1].spec.decode.replicas, 2);
  EXPECT_EQ(e->deployments[1].spec.kv_transport, "tcp");
  EXPECT_FALSE(e->runs(e->deployments[1], e->workloads[1]));
  EXPECT_EQ(e->baseline, "pd-again");
  ASSERT_EQ(e->comparisons.size(), 1u);
  EXPECT_EQ(e->comparisons[0].name, "pd-vs-pd-again");
  fs::remove_all(dir);
}

TEST(ExperimentTest, TraceSearchStartsAtItsScaledRateUnlessGivenOne) {
  const std::string trace = std::string(BATON_TEST_DATA) + "/traces/azure_llm_2023_conv.csv";
  auto e = Experiment::parse_yaml(
      "deployments: [{name: a, spec: {mode: agg, replicas: 1}}]\nsearch: {start_rate: 2}\nworkloads:\n"
      "  - {name: t, trace: " +
      trace +
      ", time_scale: 0.5, num_requests: 500, slo: \"ttft:p90<1s\"}\n"
      "  - {name: u, trace: " +
      trace + ", time_scale: 0.5, num_requests: 500, start_rate: 3, slo: \"ttft:p90<1s\"}\n");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ(e->workloads[0].options.kind, "trace");
  auto t = effective_search(e->workloads[0]);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  // The first 500 requests arrive over 129 s: ~3.87 req/s, twice that at time scale 0.5.
  EXPECT_NEAR(t->start_rate, 7.74, 0.05);
  auto u = effective_search(e->workloads[1]);
  ASSERT_TRUE(u.is_ok());
  EXPECT_DOUBLE_EQ(u->start_rate, 3.0);
}

TEST(ExperimentTest, PerDeploymentStartRates) {
  const std::string head =
      "deployments: [{name: a, spec: {mode: agg, replicas: 1}}, {name: b, spec: {mode: agg, replicas: 2}}]\n"
      "search: {start_rate: 2}\nworkloads:\n";
  auto e = Experiment::parse_yaml(head +
                                  "  - {name: w, input_len: 8, output_len: 4, slo: \"ttft:p90<1s\", "
                                  "start_rates: {b: 0.5}}\n");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_DOUBLE_EQ(effective_search(e->workloads[0], "a")->start_rate, 2.0);
  auto b = effective_search(e->workloads[0], "b");
  EXPECT_DOUBLE_EQ(b->start_rate, 0.5);
  EXPECT_LE(b->min_rate, 0.5);
  EXPECT_DOUBLE_EQ(effective_search(e->workloads[0])->start_rate, 2.0);
  auto unknown = Experiment::parse_yaml(head +
                                        "  - {name: w, input_len: 8, output_len: 4, slo: \"ttft:p90<1s\", "
                                        "start_rates: {c: 1}}\n");
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.status().message().find("'c'"), std::string::npos) << unknown.status().message();
  auto zero = Experiment::parse_yaml(head +
                                     "  - {name: w, input_len: 8, output_len: 4, slo: \"ttft:p90<1s\", "
                                     "start_rates: {a: 0}}\n");
  ASSERT_FALSE(zero.is_ok());
  EXPECT_NE(zero.status().message().find("rate > 0"), std::string::npos) << zero.status().message();
}

TEST(ExperimentTest, BadExperimentsSayWhatIsWrong) {
  auto err = [](const std::string& text) {
    auto e = Experiment::parse_yaml(text);
    return e.is_ok() ? std::string("accepted") : e.status().message();
  };
  const std::string dep = "deployments: [{name: a, spec: {mode: agg, replicas: 1}}]\n";
  EXPECT_NE(err(dep).find("workloads"), std::string::npos);
  EXPECT_NE(err(dep + "workloads: [{name: w}]\n").find("needs an slo"), std::string::npos);
  EXPECT_NE(err(dep + "workloads: [{name: w, slo: \"ttft:p90<1s\", colour: red}]\n").find("unknown field 'colour'"),
            std::string::npos);
  EXPECT_NE(err(dep + "workloads: [{name: w, slo: \"ttft<1s\"}]\n"), "accepted");
  EXPECT_NE(err(dep + "workloads: [{name: w, slo: \"ttft:p90<1s\"}, {name: w, slo: \"ttft:p90<1s\"}]\n")
                .find("two workloads are named 'w'"),
            std::string::npos);
  EXPECT_NE(err(dep + "workloads: [{name: \"a/b\", slo: \"ttft:p90<1s\"}]\n").find("letters, digits"),
            std::string::npos);
  EXPECT_NE(err(dep + "workloads: [{name: w, slo: \"ttft:p90<1s\", deployments: [zz]}]\n").find("'zz'"),
            std::string::npos);
  EXPECT_NE(err(dep + "baseline: zz\nworkloads: [{name: w, slo: \"ttft:p90<1s\"}]\n").find("baseline 'zz'"),
            std::string::npos);
  EXPECT_NE(err(dep + "workloads: [{name: w, slo: \"ttft:p90<1s\", input_len: \"9:3\"}]\n"), "accepted");
  EXPECT_NE(err(dep + "search: {precision: 2}\nworkloads: [{name: w, slo: \"ttft:p90<1s\"}]\n").find("precision"),
            std::string::npos);
  EXPECT_NE(err("deployments: [{name: a, spec: {mode: pd}}]\nworkloads: [{name: w, slo: \"ttft:p90<1s\"}]\n")
                .find("prefill.replicas"),
            std::string::npos);
  EXPECT_NE(
      err("deployments: [missing-file.yaml]\nworkloads: [{name: w, slo: \"ttft:p90<1s\"}]\n").find("missing-file.yaml"),
      std::string::npos);
  EXPECT_NE(err("[1, 2]"), "accepted");
  EXPECT_NE(err("deployments: [\n"), "accepted");
}

// 16 ports from the pid, so parallel tests do not collide, below Linux's
// ephemeral range (32768 up), where an outgoing connection may hold one.
int test_port_base() { return 21000 + (getpid() % 700) * 16; }

// Runs `baton ARGS...` to completion; returns its exit code and output.
std::pair<int, std::string> run_baton(const std::vector<std::string>& args, const fs::path& log, double timeout_s) {
  ProcessOptions o;
  o.program = BATON_BINARY;
  o.args = args;
  o.log_path = log.string();
  auto child = ChildProcess::spawn(o);
  if (!child.is_ok()) return {-1, child.status().to_string()};
  child->wait_exit(timeout_s);
  if (child->running()) {
    child->stop(5.0);
    return {-1, "timed out: " + read_all(log)};
  }
  return {child->exit_code(), read_all(log)};
}

TEST(SweepEndToEndTest, TwoDeploymentsResultsTableReportResumeAndNothingLeft) {
  fs::path dir = fresh_dir("e2e");
  auto init = run_baton({"init-model", "--preset", "tiny-qwen3", "--out", (dir / "model").string(), "--seed", "1"},
                        dir / "init.log", 120);
  ASSERT_EQ(init.first, 0) << init.second;
  const int port = test_port_base();  // uses port .. port + 12
  auto deployment = [&](const std::string& name, int replicas, int p) {
    return fmt::format(
        "  - name: {}\n    spec: {{mode: agg, replicas: {}, model: {}, router: {{port: {}}}, base_port: {}, "
        "engine_args: {{num-kv-blocks: 128, max-num-seqs: 16, num-threads: 1}}}}\n",
        name, replicas, (dir / "model").string(), p, p + 1);
  };
  std::string pd = fmt::format(
      "  - name: pd-1p1d\n    spec: {{mode: pd, prefill: 1, decode: 1, kv_transport: shm, model: {}, "
      "router: {{port: {}}}, base_port: {}, base_kv_port: {}, engine_args: {{num-kv-blocks: 128, max-num-seqs: 16, "
      "num-threads: 1}}}}\n",
      (dir / "model").string(), port + 8, port + 9, port + 12);
  std::string exp = "name: cpu-test\nbaseline: agg-1\ndeployments:\n" + deployment("agg-1", 1, port) +
                    deployment("agg-2", 2, port + 4) + pd +
                    "workloads:\n  - {name: short, input_len: 24, output_len: 6, slo: \"e2e:p90<1500ms\"}\n"
                    "search: {start_rate: 8, precision: 0.5, num_requests: 16, warmup: 2, max_trials: 3}\n";
  std::ofstream(dir / "exp.yaml") << exp;
  const fs::path out = dir / "out";

  auto first = run_baton({"sweep", (dir / "exp.yaml").string(), "--out", out.string()}, dir / "sweep1.log", 150);
  ASSERT_EQ(first.first, 0) << first.second;
  for (const char* dep : {"agg-1", "agg-2", "pd-1p1d"}) {
    EXPECT_NE(first.second.find(std::string("=== ") + dep + ": bringing it up"), std::string::npos);
    auto doc = read_json_file(result_path(out.string(), dep, "short"));
    ASSERT_TRUE(doc.is_ok()) << doc.status().to_string();
    EXPECT_EQ((*doc)["label"], dep);
    EXPECT_GE((*doc)["runs"].size(), 1u);
    EXPECT_EQ((*doc)["config"]["sweep"]["vocab_size"], 512);  // read from the model's config.json
    const Json& spec = (*doc)["config"]["sweep"]["deployment"];
    if (spec["mode"] == "agg") EXPECT_EQ(spec["replicas"], dep == std::string("agg-1") ? 1 : 2);
    else EXPECT_EQ(spec["kv_transport"], "shm");
    // Per-request records of every trial, warm-up marked.
    std::string lines = read_all(requests_path(out.string(), dep, "short"));
    size_t num_lines = std::count(lines.begin(), lines.end(), '\n');
    EXPECT_EQ(num_lines, 16 * (*doc)["runs"].size());
    EXPECT_NE(lines.find("\"trial\":0"), std::string::npos);
    EXPECT_TRUE(fs::exists(out / "logs" / dep / "router.log"));
    // Each instance's load during each trial: sampled from /metrics into a timeline,
    // summed up in the bench log and in the result's runs.
    std::string timeline = read_all(out / "logs" / dep / "short.metrics.jsonl");
    const size_t num_targets = std::string(dep) == "agg-1" ? 2 : 3;  // the instances and the router
    size_t num_samples = std::count(timeline.begin(), timeline.end(), '\n');
    EXPECT_GE(num_samples, 2 * num_targets * (*doc)["runs"].size()) << timeline;  // a first and a last round a trial
    size_t first_nl = timeline.find('\n');
    ASSERT_NE(first_nl, std::string::npos);
    Json sample = Json::parse(timeline.substr(0, first_nl));
    EXPECT_EQ(sample["trial"], 0);
    EXPECT_TRUE(sample.contains("t_s"));
    EXPECT_FALSE(sample.contains("error")) << sample.dump();
    EXPECT_NE(timeline.find("\"instance\":\"router\""), std::string::npos);
    EXPECT_NE(timeline.find("\"waiting\":"), std::string::npos);
    EXPECT_NE(timeline.find("\"router_in_flight\":"), std::string::npos);
    std::string bench_log = read_all(out / "logs" / dep / "short.bench.log");
    EXPECT_NE(bench_log.find("instances during the trial (short.metrics.jsonl):"), std::string::npos) << bench_log;
    EXPECT_NE(bench_log.find("    router (router): in flight max "), std::string::npos) << bench_log;
    const Json& loads = (*doc)["runs"][0]["instances"];
    ASSERT_EQ(loads.size(), num_targets) << loads.dump();
    EXPECT_EQ(loads.back()["instance"], "router");
    EXPECT_GE(loads[0]["samples"].get<int>(), 2);
    EXPECT_EQ(loads[0]["failed_samples"], 0);
  }
  EXPECT_TRUE(fs::exists(out / "experiment.yaml"));
  std::string md = read_all(out / "table.md");
  EXPECT_NE(md.find("| short | `e2e:p90<1500ms` |"), std::string::npos) << md;
  EXPECT_NE(md.find("(1.00x)"), std::string::npos) << md;
  EXPECT_NE(md.find("\n## The SLO target that broke first"), std::string::npos) << md;
  std::string html = read_all(out / "report.html");
  EXPECT_NE(html.find("<iframe title=\"short\""), std::string::npos);
  EXPECT_NE(html.find("agg-2"), std::string::npos);
  auto table1 = read_json_file((out / "table.json").string());
  ASSERT_TRUE(table1.is_ok());
  EXPECT_TRUE((*table1)["workloads"][0]["deployments"]["agg-1"]["present"].get<bool>());
  EXPECT_TRUE((*table1)["workloads"][0]["deployments"]["agg-2"]["present"].get<bool>());
  EXPECT_TRUE((*table1)["workloads"][0]["deployments"]["pd-1p1d"]["present"].get<bool>());

  // Every process the sweep started is gone.
  std::regex re(R"(started ([a-z]+-\d+) \(pid (\d+))");
  int num_started = 0;
  for (std::sregex_iterator it(first.second.begin(), first.second.end(), re), end; it != end; ++it) {
    ++num_started;
    pid_t pid = std::stoi((*it)[2]);
    EXPECT_FALSE(alive(pid)) << (*it)[1] << " (pid " << pid << ") left behind";
    EXPECT_TRUE(kv_segments_of(pid).empty()) << (*it)[1] << " (pid " << pid << ") left a /dev/shm KV segment";
  }
  EXPECT_EQ(num_started, 5);
  // Torn down gracefully, not killed at the grace (issue 22, finding 7).
  EXPECT_EQ(first.second.find("killing it"), std::string::npos) << first.second;
  for (const char* log : {"agg-2/agg-1.log", "pd-1p1d/prefill-0.log", "pd-1p1d/decode-0.log"}) {
    EXPECT_NE(read_all(out / "logs" / log).find("server stopped"), std::string::npos) << log;
  }  // 1 + 2 + (1 + 1) instances (the router's pid is not announced)

  // Without --resume the sweep refuses to overwrite.
  auto refused = run_baton({"sweep", (dir / "exp.yaml").string(), "--out", out.string()}, dir / "sweep2.log", 60);
  EXPECT_EQ(refused.first, 2) << refused.second;
  EXPECT_NE(refused.second.find("--resume"), std::string::npos) << refused.second;

  // With --resume nothing runs again; the table is rebuilt the same.
  auto mtime1 = fs::last_write_time(result_path(out.string(), "agg-1", "short"));
  auto mtime2 = fs::last_write_time(result_path(out.string(), "agg-2", "short"));
  auto resumed = run_baton({"sweep", (dir / "exp.yaml").string(), "--out", out.string(), "--resume"},
                           dir / "sweep3.log", 60);
  ASSERT_EQ(resumed.first, 0) << resumed.second;
  EXPECT_NE(resumed.second.find("0 result(s) run now, 3 already on disk"), std::string::npos) << resumed.second;
  EXPECT_EQ(resumed.second.find("bringing it up"), std::string::npos) << resumed.second;
  EXPECT_EQ(fs::last_write_time(result_path(out.string(), "agg-1", "short")), mtime1);
  EXPECT_EQ(fs::last_write_time(result_path(out.string(), "agg-2", "short")), mtime2);
  auto table2 = read_json_file((out / "table.json").string());
  ASSERT_TRUE(table2.is_ok());
  EXPECT_EQ(*table1, *table2);
  EXPECT_EQ(read_all(out / "table.md"), md);

  // --plan and --report-only run nothing.
  auto plan = run_baton({"sweep", (dir / "exp.yaml").string(), "--out", out.string(), "--plan"}, dir / "plan.log", 30);
  ASSERT_EQ(plan.first, 0) << plan.second;
  EXPECT_NE(plan.second.find("agg-2 (inline, agg, 2 replicas):\n  short"), std::string::npos) << plan.second;
  EXPECT_NE(plan.second.find("pd-1p1d (inline, pd, 1P1D over shm)"), std::string::npos) << plan.second;
  EXPECT_NE(plan.second.find("on disk"), std::string::npos) << plan.second;
  EXPECT_EQ(plan.second.find("to run"), std::string::npos) << plan.second;
  auto report = run_baton({"sweep", (dir / "exp.yaml").string(), "--out", out.string(), "--report-only"},
                          dir / "report.log", 30);
  ASSERT_EQ(report.first, 0) << report.second;
  EXPECT_EQ(report.second.find("bringing it up"), std::string::npos) << report.second;
  EXPECT_EQ(read_all(out / "table.md"), md);

  // A result that is missing (a sweep stopped part-way) is all --resume runs.
  fs::remove(result_path(out.string(), "agg-2", "short"));
  auto part = run_baton({"sweep", (dir / "exp.yaml").string(), "--out", out.string(), "--resume"}, dir / "sweep4.log",
                        90);
  ASSERT_EQ(part.first, 0) << part.second;
  EXPECT_NE(part.second.find("1 result(s) run now, 2 already on disk"), std::string::npos) << part.second;
  EXPECT_EQ(part.second.find("=== agg-1: bringing it up"), std::string::npos) << part.second;
  EXPECT_EQ(part.second.find("=== pd-1p1d: bringing it up"), std::string::npos) << part.second;
  EXPECT_NE(part.second.find("=== agg-2: bringing it up"), std::string::npos) << part.second;
  EXPECT_EQ(fs::last_write_time(result_path(out.string(), "agg-1", "short")), mtime1);
  EXPECT_TRUE(fs::exists(result_path(out.string(), "agg-2", "short")));
  for (std::sregex_iterator it(part.second.begin(), part.second.end(), re), end; it != end; ++it) {
    EXPECT_FALSE(alive(std::stoi((*it)[2]))) << (*it)[1] << " left behind";
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace baton::deploy

namespace baton::deploy {
namespace {

TEST(SweepEndToEndTest, SigtermKeepsFinishedTrialsTearsDownAndResumeReplaysThem) {
  fs::path dir = fresh_dir("sigterm");
  auto init = run_baton({"init-model", "--preset", "tiny-qwen3", "--out", (dir / "model").string(), "--seed", "1"},
                        dir / "init.log", 120);
  ASSERT_EQ(init.first, 0) << init.second;
  const int port = test_port_base() + 13;  // uses port .. port + 2
  std::string exp = fmt::format(
      "name: stop-test\ndeployments:\n  - name: agg-2\n    spec: {{mode: agg, replicas: 2, model: {}, "
      "router: {{port: {}}}, base_port: {}, engine_args: {{num-kv-blocks: 128, num-threads: 1}}}}\n"
      "workloads:\n  - {{name: w, input_len: 16, output_len: 4, slo: \"e2e:p90<3s\"}}\n"
      "search: {{start_rate: 4, precision: 0.5, num_requests: 12, max_trials: 3}}\n",
      (dir / "model").string(), port, port + 1);
  std::ofstream(dir / "exp.yaml") << exp;
  const fs::path out = dir / "out";
  ProcessOptions o;
  o.program = BATON_BINARY;
  o.args = {"sweep", (dir / "exp.yaml").string(), "--out", out.string()};
  o.log_path = (dir / "sweep.log").string();
  auto child = ChildProcess::spawn(o);
  ASSERT_TRUE(child.is_ok());
  bool in_search = false;
  ::baton::testing::wait_until(
      [&] {
        in_search = read_all(dir / "sweep.log").find("searching") != std::string::npos;
        return in_search || !child->running();
      },
      30.0, 25);
  ASSERT_TRUE(in_search) << read_all(dir / "sweep.log");
  child->signal(SIGTERM);
  ::baton::testing::wait_until([&] { return !child->running(); }, 60, 50);
  ASSERT_FALSE(child->running());
  EXPECT_EQ(child->exit_code(), 1);
  std::string log = read_all(dir / "sweep.log");
  EXPECT_NE(log.find("interrupted"), std::string::npos) << log;
  EXPECT_NE(log.find("tearing it down"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(result_path(out.string(), "agg-2", "w"))) << log;
  std::regex re(R"(started ([a-z]+-\d+) \(pid (\d+))");
  int num_started = 0;
  for (std::sregex_iterator it(log.begin(), log.end(), re), end; it != end; ++it) {
    ++num_started;
    EXPECT_FALSE(alive(std::stoi((*it)[2]))) << (*it)[1] << " left behind";
  }
  EXPECT_EQ(num_started, 2);
  // The trial that finished is kept.
  const std::string partial = partial_path(out.string(), "agg-2", "w");
  ASSERT_TRUE(fs::exists(partial)) << log;
  std::string kept = read_all(partial);
  EXPECT_EQ(std::count(kept.begin(), kept.end(), '\n'), 1) << kept;
  // Without --resume the unfinished search is not thrown away.
  auto refused = run_baton({"sweep", (dir / "exp.yaml").string(), "--out", out.string()}, dir / "refused.log", 30);
  EXPECT_EQ(refused.first, 2) << refused.second;
  EXPECT_NE(refused.second.find("unfinished search"), std::string::npos) << refused.second;
  // Trials measured on other cards are not replayed: that search starts again (here the
  // budget is spent at once, so no trial runs, and the foreign one is gone).
  {
    Json foreign = Json::parse(kept);
    foreign["gpus"] = Json::array({{{"instance", "agg-0"}, {"gpu", 0}, {"name", "H100"}}});
    std::ofstream(partial) << foreign.dump() << "\n";
    auto other = run_baton(
        {"sweep", (dir / "exp.yaml").string(), "--out", out.string(), "--resume", "--time-budget-s", "0.01"},
        dir / "other-cards.log", 60);
    EXPECT_EQ(other.first, 1) << other.second;
    EXPECT_NE(other.second.find("ran on 1x H100, this host has none: searching again"), std::string::npos)
        << other.second;
    EXPECT_FALSE(fs::exists(partial)) << other.second;
    std::ofstream(partial) << kept;
  }
  // A spent time budget starts no new trial: the kept one is replayed, nothing else runs.
  auto budget = run_baton(
      {"sweep", (dir / "exp.yaml").string(), "--out", out.string(), "--resume", "--time-budget-s", "0.01"},
      dir / "budget.log", 60);
  EXPECT_EQ(budget.first, 1) << budget.second;
  EXPECT_NE(budget.second.find("trial 0 at 4.000 req/s: from disk"), std::string::npos) << budget.second;
  EXPECT_NE(budget.second.find("time budget"), std::string::npos) << budget.second;
  EXPECT_EQ(read_all(partial), kept);
  auto resumed = run_baton({"sweep", (dir / "exp.yaml").string(), "--out", out.string(), "--resume"},
                           dir / "resume.log", 90);
  ASSERT_EQ(resumed.first, 0) << resumed.second;
  EXPECT_NE(resumed.second.find("1 result(s) run now, 0 already on disk"), std::string::npos) << resumed.second;
  EXPECT_NE(resumed.second.find("trial 0 at 4.000 req/s: from disk"), std::string::npos) << resumed.second;
  EXPECT_NE(resumed.second.find("trial 1 at "), std::string::npos) << resumed.second;
  EXPECT_TRUE(fs::exists(result_path(out.string(), "agg-2", "w")));
  EXPECT_FALSE(fs::exists(partial));
  // The result holds the replayed trial and the new ones, their requests included.
  auto doc = read_json_file(result_path(out.string(), "agg-2", "w"));
  ASSERT_TRUE(doc.is_ok());
  const size_t num_runs = (*doc)["runs"].size();
  EXPECT_EQ(num_runs, (*doc)["search"]["num_trials"].get<size_t>());
  EXPECT_GE(num_runs, 2u);
  EXPECT_DOUBLE_EQ((*doc)["runs"][0]["target_rate_rps"].get<double>(), 4.0);
  EXPECT_TRUE((*doc)["cdf"]["ttft_ms"].is_array());
  std::string lines = read_all(requests_path(out.string(), "agg-2", "w"));
  EXPECT_EQ(static_cast<size_t>(std::count(lines.begin(), lines.end(), '\n')), 12 * num_runs);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace baton::deploy

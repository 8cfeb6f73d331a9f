// The load generator and the rate search against the deterministic SimServer,
// whose capacity is known: num_slots / (first_token_delay + (n - 1) * per_token_delay).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "bench/bench_result.h"
#include "bench/bench_run.h"
#include "bench/completion_protocol.h"
#include "bench/rate_search.h"
#include "bench/sim_server.h"
#include "bench/trial_engine.h"
#include "http/http_client.h"
#include "sim_config.h"

namespace baton::bench {
namespace {

TEST(CompletionProtocolTest, BodyAndChunks) {
  RequestSpec spec;
  spec.prompt = {{42, 5}};
  spec.output_tokens = 7;
  CompletionBodyOptions o;
  o.model = "m";
  o.vocab_size = 1000;
  auto body = Json::parse(make_completion_body(spec, o));
  EXPECT_EQ(body["prompt"].size(), 5u);
  EXPECT_EQ(body["max_tokens"], 7);
  EXPECT_EQ(body["min_tokens"], 7);
  EXPECT_EQ(body["ignore_eos"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  o.prompt_format = PromptFormat::kText;
  o.extra = {{"temperature", 0.5}};
  auto text = Json::parse(make_completion_body(spec, o));
  EXPECT_TRUE(text["prompt"].is_string());
  EXPECT_EQ(text["temperature"], 0.5);

  auto c = parse_completion_chunk(R"({"choices":[{"index":0,"text":" hi","finish_reason":null}]})");
  EXPECT_TRUE(c.content);
  EXPECT_EQ(c.text, " hi");
  auto empty = parse_completion_chunk(R"({"choices":[{"index":0,"text":"","finish_reason":"length"}]})");
  EXPECT_FALSE(empty.content);
  EXPECT_EQ(empty.finish_reason, "length");
  auto usage = parse_completion_chunk(R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}})");
  EXPECT_TRUE(usage.has_usage);
  EXPECT_EQ(usage.completion_tokens, 7);
  EXPECT_TRUE(parse_completion_chunk("[DONE]").done);
  EXPECT_EQ(parse_completion_chunk(R"({"error":{"message":"boom"}})").error, "boom");
  EXPECT_FALSE(parse_completion_chunk("{nope").error.empty());
}

using test_util::sim_config;

// A SimServer with no slot limit and `per_token_s` between tokens, started.
std::unique_ptr<SimServer> started_sim_server(double per_token_s) {
  SimServerOptions so;
  so.per_token_delay_s = per_token_s;
  auto server = std::make_unique<SimServer>(so);
  EXPECT_TRUE(server->start().is_ok());
  return server;
}

TEST(LoadGeneratorTest, MeasuresTheSimServerExactly) {
  SimServerOptions so;
  so.first_token_delay_s = 0.020;
  so.per_token_delay_s = 0.005;
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  auto cfg = sim_config(server.url(), 50, 40, 5);
  cfg.load.num_warmup = 5;
  auto rep = run_benchmark(cfg).value();
  ASSERT_EQ(rep.load.records.size(), 40u);
  EXPECT_EQ(rep.metrics.num_requests, 35u);
  EXPECT_EQ(rep.metrics.num_ok, 35u) << rep.to_json().dump(1);
  EXPECT_EQ(rep.metrics.total_output_tokens, 35 * 5);
  EXPECT_EQ(rep.metrics.num_without_usage, 0u);
  // TTFT ~ 20 ms, TPOT ~ 5 ms, E2E ~ 40 ms (plus loopback and timer slop).
  EXPECT_GT(rep.metrics.ttft_s.p50, 0.019);
  EXPECT_LT(rep.metrics.ttft_s.p50, 0.030);
  EXPECT_NEAR(rep.metrics.tpot_s.p50, 0.005, 0.002);
  EXPECT_NEAR(rep.metrics.itl_s.p50, 0.005, 0.002);
  EXPECT_GT(rep.metrics.e2e_s.p50, 0.039);
  EXPECT_EQ(rep.metrics.itl_s.count, 35u * 4);
  // Constant arrivals 20 ms apart.
  EXPECT_NEAR(rep.load.records[10].scheduled_s - rep.load.records[9].scheduled_s, 0.02, 1e-9);
  EXPECT_NEAR(rep.metrics.offered_rate, 50, 0.5);
  EXPECT_LT(rep.metrics.scheduling_delay_s.p50, 0.002);
  // One connection per concurrent request at most: keep-alive reuse.
  EXPECT_LE(rep.load.num_connections_opened, 6u);
}

// A time-based warm-up: requests scheduled before warmup_s are not measured,
// whatever the rate (constant arrivals 20 ms apart: t = 0, 0.02, ... 0.78 s).
TEST(LoadGeneratorTest, WarmupSecondsExcludeTheRampByScheduleTime) {
  auto server = started_sim_server(0.002);
  auto cfg = sim_config(server->url(), 50, 40, 3);
  cfg.load.warmup_s = 0.199;  // t = 0 ... 0.18: 10 requests
  auto rep = run_benchmark(cfg).value();
  ASSERT_EQ(rep.load.records.size(), 40u);
  EXPECT_EQ(rep.metrics.num_requests, 30u);
  for (const auto& r : rep.load.records) EXPECT_EQ(r.warmup, r.scheduled_s < 0.199) << r.index;
  cfg.load.num_warmup = 15;  // both: whichever excludes more
  rep = run_benchmark(cfg).value();
  EXPECT_EQ(rep.metrics.num_requests, 25u);
}

TEST(LoadGeneratorTest, ConcurrencyCapAndErrorsByKind) {
  SimServerOptions so;
  so.per_token_delay_s = 0.010;
  so.fail_every_n = 4;
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  auto cfg = sim_config(server.url(), 1000, 20, 5);  // all due at once
  cfg.load.max_concurrency = 2;
  auto rep = run_benchmark(cfg).value();
  EXPECT_LE(rep.load.max_in_flight, 2u);
  EXPECT_EQ(rep.metrics.num_failed, 5u);
  EXPECT_EQ(rep.metrics.errors_by_kind.at("http_5xx"), 5u);
  // The cap shows as scheduling delay, not as client lag.
  EXPECT_GT(rep.metrics.scheduling_delay_s.max, 0.1);
  EXPECT_LT(rep.load.lag_p99_s, 0.005);
  const auto& failed = rep.load.records[3];
  EXPECT_FALSE(failed.ok);
  EXPECT_NE(failed.error.find("503"), std::string::npos);
}

TEST(LoadGeneratorTest, UnreachableServerIsConnectionErrors) {
  auto cfg = sim_config("http://127.0.0.1:1", 100, 3, 2);
  auto rep = run_benchmark(cfg).value();
  EXPECT_EQ(rep.metrics.errors_by_kind.at("connection"), 3u);
  EXPECT_FALSE(rep.slo.sustainable && !cfg.slo.targets.empty());
}

TEST(LoadGeneratorTest, MultiturnFollowsThinkTime) {
  SimServerOptions so;
  so.per_token_delay_s = 0.002;
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  auto cfg = sim_config(server.url(), 20, 6, 3);
  cfg.workload.kind = "multiturn";
  cfg.workload.num_turns = 3;
  cfg.workload.think_time_s = 0.05;
  auto rep = run_benchmark(cfg).value();
  ASSERT_EQ(rep.load.records.size(), 6u);  // 2 sessions x 3 turns
  for (size_t i = 0; i < 6; ++i) {
    ASSERT_TRUE(rep.load.records[i].ok) << rep.load.records[i].error;
    if (rep.load.records[i].turn > 0) {
      EXPECT_NEAR(rep.load.records[i].scheduled_s, rep.load.records[i - 1].end_s + 0.05, 1e-9);
      EXPECT_GE(rep.load.records[i].send_s, rep.load.records[i - 1].end_s + 0.05);
    }
  }
}

TEST(LoadGeneratorTest, MultiturnTextCarriesTheRealAnswers) {
  SimServerOptions so;  // answers " tok" per token; counts a text prompt as bytes / 4 + 1 tokens
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  auto cfg = sim_config(server.url(), 20, 3, 50);
  cfg.workload.kind = "multiturn";
  cfg.workload.num_turns = 3;
  cfg.workload.think_time_s = 0;
  cfg.workload.input_len = {4, 4};
  cfg.workload.prompt_format = PromptFormat::kText;
  cfg.load.prompt_format = PromptFormat::kText;
  auto rep = run_benchmark(cfg).value();
  ASSERT_EQ(rep.load.records.size(), 3u);
  for (const auto& r : rep.load.records) ASSERT_TRUE(r.ok) << r.error;
  // Each answer is 50 x " tok" = 200 bytes, about 50 more prompt tokens per turn.
  int64_t p0 = rep.load.records[0].prompt_tokens, p1 = rep.load.records[1].prompt_tokens,
          p2 = rep.load.records[2].prompt_tokens;
  EXPECT_GE(p1 - p0, 50);
  EXPECT_GE(p2 - p1, 50);
}

TEST(LoadGeneratorTest, AClientThatFallsBehindSaysSo) {
  SimServerOptions so;
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  // 3000 requests all due at t = 0 on one thread: the last ones go out late.
  auto cfg = sim_config(server.url(), INFINITY, 3000, 1);
  auto rep = run_benchmark(cfg).value();
  EXPECT_EQ(rep.metrics.num_ok, 3000u);
  EXPECT_TRUE(rep.load.fell_behind);
  EXPECT_GT(rep.load.lag_max_s, 0.05);
  EXPECT_NE(rep.load.warning.find("the client sent late"), std::string::npos) << rep.load.warning;
  EXPECT_NE(rep.load.warning.find(fmt::format("may read up to {:.2f} ms higher", rep.load.lag_max_s * 1e3)),
            std::string::npos)
      << rep.load.warning;
  EXPECT_NE(rep.to_json()["client"]["warning"].get<std::string>().find("the client sent late"), std::string::npos);
  EXPECT_NE(format_run(rep).find("  note: the client sent late"), std::string::npos);
}

// Issue 22, finding 3: a 5 ms client lag printed a banner of "!!!!!!!!" whatever the latencies.
// The warning now appears only when the lag could move a reported percentile, and says by how much.
TEST(LoadGeneratorTest, TheClientLagWarningIsProportionate) {
  EXPECT_EQ(client_lag_warning(0.004, 0.005, 0.600), "") << "5 ms against a 600 ms TTFT moves nothing that matters";
  EXPECT_EQ(client_lag_warning(0.0005, 0.0009, 0.010), "") << "under 1 ms is never worth a line";
  std::string w = client_lag_warning(0.004, 0.005, 0.100);
  EXPECT_NE(w.find("p99 4.00 ms, max 5.00 ms"), std::string::npos) << w;
  EXPECT_NE(w.find("up to 5.00 ms higher than the server made it (5.0% of TTFT p50 from arrival, 100.00 ms)"),
            std::string::npos)
      << w;
  EXPECT_EQ(w.find('!'), std::string::npos) << w;
  EXPECT_NE(client_lag_warning(0.004, 0.005, std::nan("")), "") << "no TTFT to compare with: said";
}

TEST(LoadGeneratorTest, TextPromptsAndTraceReplay) {
  SimServerOptions so;
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  auto cfg = sim_config(server.url(), 200, 10, 3);
  cfg.workload.prompt_format = PromptFormat::kText;
  cfg.load.prompt_format = PromptFormat::kText;
  auto text = run_benchmark(cfg).value();
  EXPECT_EQ(text.metrics.num_ok, 10u);
  // The first 40 requests of the Azure trace, replayed at 100 req/s.
  auto trace = sim_config(server.url(), 100, 40, 3);
  trace.workload.kind = "trace";
  trace.workload.trace_path = std::string(BATON_TEST_DATA) + "/traces/azure_llm_2023_conv.csv";
  auto rep = run_benchmark(trace, 100.0).value();
  ASSERT_EQ(rep.load.records.size(), 40u);
  EXPECT_EQ(rep.metrics.num_ok, 40u);
  EXPECT_NEAR(rep.target_rate, 100.0, 1e-9);
  EXPECT_NEAR(rep.load.records.back().scheduled_s, 39 / 100.0, 1e-9);  // (n - 1) / rate
  EXPECT_EQ(rep.load.records[0].expected_output_tokens, 44);           // the trace's GeneratedTokens
  EXPECT_EQ(rep.load.records[0].output_tokens, 44);
  // The report leads with the rate offered, then the one asked for (issue 22, finding 4).
  EXPECT_NEAR(rep.metrics.offered_rate, 100.0, 1e-6);
  EXPECT_EQ(format_run(rep).rfind("offered 100.000 req/s (requested 100.000 req/s): 40 requests", 0), 0u)
      << format_run(rep);
}

// Issue 22, finding 4: "--duration-s 20 --warmup-s 3 --search" aborted the whole search with
// "all 12 requests of the run at 2.000 req/s were warm-up: nothing to measure". A warm-up never
// takes more than half a run: one that would is cut to the first half, the run says so, and the
// search goes on.
TEST(RateSearchTest, AWarmUpLongerThanATrialIsShortenedAndTheSearchGoesOn) {
  auto server = started_sim_server(0.001);
  auto cfg = sim_config(server->url(), 1, 0, 2);
  cfg.workload.duration_s = 0.25;
  cfg.load.warmup_s = 3;  // longer than the whole trial
  cfg.slo = parse_slo("e2e:p90<1s").value();
  auto one = run_benchmark(cfg, 40.0);
  ASSERT_TRUE(one.is_ok()) << one.status().to_string();
  const size_t n = one->load.records.size();
  EXPECT_EQ(one->metrics.num_requests, n - n / 2);
  EXPECT_NE(one->load.warmup_note.find(fmt::format("covered {} of the run's {} requests", n, n)), std::string::npos)
      << one->load.warmup_note;
  EXPECT_NE(format_run(*one).find("  note: the warm-up (--warmup 0, --warmup-s 3)"), std::string::npos);
  SearchOptions o;
  o.start_rate = 40;
  o.max_rate = 80;
  auto r = TrialEngine(cfg, 0).search(o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->trials.size(), 2u);  // 40 and 80 passed; 160 is over the maximum
  EXPECT_EQ(r->max_passed_rate, 80.0);
  for (const auto& t : r->trials) EXPECT_TRUE(t.sustainable) << t.summary.dump();
}

TEST(RateSearchTest, FindsAThresholdWithinPrecision) {
  const double cap = 37.3;
  auto trial = [&](double rate) -> Result<TrialOutcome> {
    TrialOutcome t;
    t.worst_ratio = rate / cap;
    t.sustainable = rate <= cap;
    if (!t.sustainable) t.first_broken = "e2e:p99<1s";
    return t;
  };
  SearchOptions o;
  o.start_rate = 2;
  o.precision = 0.02;
  auto r = search_max_rate(trial, o).value();
  EXPECT_TRUE(r.converged) << r.note;
  EXPECT_LE(r.max_passed_rate, cap);
  EXPECT_GT(r.min_failed_rate, cap);
  EXPECT_LE((r.min_failed_rate - r.max_passed_rate) / r.max_passed_rate, 0.02);
  EXPECT_EQ(r.broke_first, "e2e:p99<1s");
  // Close trials were repeated: some rate appears three times.
  std::map<double, int> runs;
  for (const auto& t : r.trials) runs[t.rate]++;
  bool repeated = false;
  for (auto& [rate, n] : runs) repeated |= n == 3;
  EXPECT_TRUE(repeated);
  // From above: halves down first.
  o.start_rate = 500;
  auto down = search_max_rate(trial, o).value();
  EXPECT_LE(down.max_passed_rate, cap);
  EXPECT_GT(down.min_failed_rate, cap);
  // Nothing passes.
  auto never = [](double) -> Result<TrialOutcome> { return TrialOutcome{0, false, 9.0, "ttft:p90<1ms", {}}; };
  auto none = search_max_rate(never, o).value();
  EXPECT_EQ(none.max_passed_rate, 0.0);
  EXPECT_FALSE(none.converged);
  o.precision = 0;
  EXPECT_FALSE(search_max_rate(trial, o).is_ok());
}

TEST(RateSearchTest, FindsTheSimServerCapacity) {
  SimServerOptions so;
  so.num_slots = 4;
  so.first_token_delay_s = 0.010;
  so.per_token_delay_s = 0.005;
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  const int64_t out = 9;
  const double cap = server.capacity_rps(out);  // 4 / (10 + 8 * 5 ms) = 80 req/s
  ASSERT_NEAR(cap, 80.0, 1e-9);
  // Trials of 1 s; a failing one stops as soon as its FAIL is certain (as --search does). Below
  // capacity nothing queues (e2e = 50 ms); 5% above it the backlog reaches 4 requests within the
  // second (e2e p90 ~ 95 ms): 1 s tells the two apart.
  auto cfg = sim_config(server.url(), 1, 0, out);
  cfg.workload.duration_s = 1.0;
  cfg.early_stop = true;
  cfg.slo = parse_slo("e2e:p90<75ms").value();  // 1.5x the 50 ms service time
  SearchOptions o;
  o.start_rate = 40;
  o.precision = 0.05;
  auto r = TrialEngine(cfg, 0).search(o).value();
  EXPECT_TRUE(r.converged) << r.note;
  EXPECT_GE(r.max_passed_rate, 0.85 * cap) << r.to_json().dump(1);
  EXPECT_LE(r.max_passed_rate, 1.05 * cap) << r.to_json().dump(1);
  EXPECT_GT(r.min_failed_rate, 0.9 * cap);
  EXPECT_LE(r.min_failed_rate, 1.2 * cap);
  EXPECT_EQ(r.broke_first, "e2e:p90<75ms");
  EXPECT_LE(server.max_active_seen(), 4u);
}

}  // namespace
}  // namespace baton::bench

// SloWatch: a run is declared broken only when its verdict is certain. The
// threshold is held to evaluate_slo itself at the boundary: with k - 1
// violators evaluate_slo can still pass, with k it cannot.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "bench/bench_result.h"
#include "bench/bench_run.h"
#include "bench/sim_server.h"
#include "bench/slo.h"
#include "bench/slo_watch.h"
#include "common/clock.h"
#include "sim_config.h"

namespace baton::bench {
namespace {

RequestRecord ok_record(double ttft_s, double e2e_s, int64_t output_tokens = 10) {
  RequestRecord r;
  r.ok = true;
  r.send_s = 1.0;
  r.first_token_s = 1.0 + ttft_s;
  r.end_s = 1.0 + e2e_s;
  r.output_tokens = output_tokens;
  r.usage_reported = true;
  return r;
}

RequestRecord failed_record() {
  RequestRecord r;
  r.send_s = 1.0;
  r.end_s = 1.5;
  r.error_kind = "http_5xx";
  return r;
}

SloSpec spec_of(const std::string& text, double attainment = 0) { return parse_slo(text, attainment).value(); }

TEST(SloWatchTest, ViolatorsNeededByHand) {
  // n = 10, p90: rank 8.1, lo 8 -> the top 2 values decide.
  EXPECT_EQ(SloWatch::violators_needed(90, 10), 2u);
  // n = 11, p90: rank 9 exactly -> x[9]: 2 values.
  EXPECT_EQ(SloWatch::violators_needed(90, 11), 2u);
  // n = 100, p99: rank 98.01 -> 2; p50: rank 49.5 -> 51.
  EXPECT_EQ(SloWatch::violators_needed(99, 100), 2u);
  EXPECT_EQ(SloWatch::violators_needed(50, 100), 51u);
  EXPECT_EQ(SloWatch::violators_needed(50, 101), 51u);
  EXPECT_EQ(SloWatch::violators_needed(100, 7), 1u);  // max
  EXPECT_EQ(SloWatch::violators_needed(0, 7), 7u);    // min
  EXPECT_EQ(SloWatch::violators_needed(90, 1), 1u);
  EXPECT_EQ(SloWatch::percentile_of("median"), 50.0);
  EXPECT_EQ(SloWatch::percentile_of("p99.9"), 99.9);
  EXPECT_FALSE(SloWatch::percentile_of("mean"));
  // Never decreases with n (a population bounded above by n may use k(n)).
  for (double p : {50.0, 90.0, 95.0, 99.0, 99.9, 33.3}) {
    for (size_t n = 1; n < 2000; ++n) {
      ASSERT_LE(SloWatch::violators_needed(p, n), SloWatch::violators_needed(p, n + 1)) << p << " " << n;
    }
  }
}

// For several n and p: k - 1 violators (value exactly the limit) with the
// rest at 0 pass evaluate_slo and leave the watch quiet; k violators fail
// evaluate_slo even with the rest just under the limit, and the watch says so.
TEST(SloWatchTest, ThresholdMatchesEvaluateSloAtTheBoundary) {
  for (size_t n : {1u, 2u, 3u, 5u, 10u, 11u, 19u, 37u, 100u, 101u, 250u}) {
    for (const char* stat : {"p50", "median", "p90", "p95", "p99", "p99.9", "p33.3", "p0", "p100", "max"}) {
      const std::string text = fmt::format("ttft:{}<1s", stat);
      SloSpec spec = spec_of(text);
      size_t k = SloWatch::violators_needed(*SloWatch::percentile_of(stat), n);
      ASSERT_GE(k, 1u);
      ASSERT_LE(k, n);
      SCOPED_TRACE(fmt::format("{} n={} k={}", text, n, k));
      // k - 1 violators, the others at 0: evaluate_slo passes; the watch is quiet.
      std::vector<RequestRecord> below;
      SloWatch quiet(spec, n);
      for (size_t i = 0; i < n; ++i) {
        below.push_back(i < k - 1 ? ok_record(1.0, 1.5) : ok_record(0.0, 0.5));
        quiet.on_finished(below.back());
      }
      EXPECT_TRUE(evaluate_slo(spec, below, 10).sustainable);
      EXPECT_FALSE(quiet.certainly_broken({}));
      // k violators at exactly the limit, the others just under it: evaluate_slo fails.
      std::vector<RequestRecord> at;
      SloWatch loud(spec, n);
      for (size_t i = 0; i < n; ++i) {
        at.push_back(i < k ? ok_record(1.0, 1.5) : ok_record(0.999999, 1.5));
        loud.on_finished(at.back());
        if (i + 1 < k) {
          EXPECT_FALSE(loud.certainly_broken({}));
        }
      }
      EXPECT_FALSE(evaluate_slo(spec, at, 10).sustainable);
      auto why = loud.certainly_broken({});
      ASSERT_TRUE(why);
      EXPECT_NE(why->reason.find(text), std::string::npos) << why->reason;
      // Failed requests are violators of every metric: k failures, the others at 0.
      std::vector<RequestRecord> failed;
      SloWatch fail_watch(spec, n);
      for (size_t i = 0; i < n; ++i) {
        failed.push_back(i < k ? failed_record() : ok_record(0.0, 0.5));
        fail_watch.on_finished(failed.back());
      }
      EXPECT_FALSE(evaluate_slo(spec, failed, 10).sustainable);
      EXPECT_TRUE(fail_watch.certainly_broken({}));
    }
  }
}

TEST(SloWatchTest, InFlightRequestsCountForTtftAndE2eOnly) {
  // n = 10, p90 needs 2 violators.
  SloWatch w(spec_of("ttft:p90<1s,e2e:p90<5s,tpot:p90<10ms"), 10);
  for (int i = 0; i < 3; ++i) w.on_finished(ok_record(0.1, 0.15));  // TPOT 5.6 ms
  EXPECT_FALSE(w.certainly_broken({{0.5, -1}, {0.9, -1}}));
  // One in flight past the TTFT limit without a first token: not yet 2.
  EXPECT_FALSE(w.certainly_broken({{1.5, -1}, {0.5, -1}}));
  // Two of them: certain.
  auto why = w.certainly_broken({{1.5, -1}, {1.0, -1}});
  ASSERT_TRUE(why);
  EXPECT_EQ(why->target, "ttft:p90<1s") << why->reason;
  // A first token that came in time clears TTFT whatever the elapsed time; a
  // long elapsed time still counts for E2E.
  EXPECT_FALSE(w.certainly_broken({{4.0, 0.2}, {4.0, 0.3}}));
  why = w.certainly_broken({{6.0, 0.2}, {5.0, 0.3}});
  ASSERT_TRUE(why);
  EXPECT_EQ(why->target, "e2e:p90<5s") << why->reason;
  // A first token that came late is a certain TTFT violation.
  EXPECT_TRUE(w.certainly_broken({{1.2, 1.1}, {1.3, 1.2}}));
}

TEST(SloWatchTest, TpotOnlyFromFinishedRequests) {
  SloWatch w(spec_of("tpot:p90<10ms"), 10);
  // TPOT = (e2e - ttft) / (tokens - 1) = (1.0 - 0.1) / 9 = 100 ms.
  w.on_finished(ok_record(0.1, 1.0));
  EXPECT_FALSE(w.certainly_broken({{100, -1}, {100, 5}, {100, -1}}));
  // A one-token answer has no TPOT: no violation.
  w.on_finished(ok_record(0.1, 5.0, 1));
  EXPECT_FALSE(w.certainly_broken({}));
  w.on_finished(ok_record(0.1, 1.0));
  EXPECT_TRUE(w.certainly_broken({}));
}

TEST(SloWatchTest, ItlIsNeverDecidedEarly) {
  SloWatch w(spec_of("itl:p50<1ms"), 4);
  for (int i = 0; i < 4; ++i) w.on_finished(failed_record());
  EXPECT_FALSE(w.certainly_broken({}));
}

TEST(SloWatchTest, MeanUsesLowerBounds) {
  SloWatch w(spec_of("e2e:mean<1s"), 10);
  w.on_finished(ok_record(0.1, 3.0));
  EXPECT_FALSE(w.certainly_broken({{2.0, 0.1}, {2.0, -1}}));  // (3 + 4) / 10 < 1
  auto why = w.certainly_broken({{3.0, 0.1}, {4.5, -1}});     // (3 + 7.5) / 10 >= 1
  ASSERT_TRUE(why);
  EXPECT_NE(why->reason.find("e2e:mean<1s"), std::string::npos);
  // Held to evaluate_slo: a finished run with those values fails.
  std::vector<RequestRecord> recs{ok_record(0.1, 3.0), ok_record(0.1, 3.0), ok_record(0.1, 4.5)};
  for (int i = 0; i < 7; ++i) recs.push_back(ok_record(0.0, 0.0));
  EXPECT_FALSE(evaluate_slo(spec_of("e2e:mean<1s"), recs, 10).sustainable);
  SloWatch f(spec_of("ttft:mean<10s"), 100);
  f.on_finished(failed_record());  // one infinite value
  EXPECT_TRUE(f.certainly_broken({}));
}

TEST(SloWatchTest, AttainmentCountsBadRequests) {
  // 10 requests, at least 80% good: 3 bad are certain failure, 2 are not.
  SloWatch w(spec_of("ttft:p99<1s", 0.8), 10);
  w.on_finished(failed_record());
  w.on_finished(ok_record(2.0, 3.0));  // p99 of 10 needs 2 violators: the failure and this one
  auto why = w.certainly_broken({});
  ASSERT_TRUE(why);
  EXPECT_EQ(why->target, "ttft:p99<1s");

  SloWatch a(spec_of("e2e:p50<1s", 0.8), 10);
  a.on_finished(failed_record());
  a.on_finished(ok_record(0.1, 2.0));
  EXPECT_FALSE(a.certainly_broken({}));
  why = a.certainly_broken({{1.5, 0.1}});
  ASSERT_TRUE(why);
  EXPECT_EQ(why->target, "attainment") << why->reason;
  // Held to evaluate_slo: 3 bad of 10 fails 0.8; 2 bad passes it.
  std::vector<RequestRecord> recs{failed_record(), ok_record(0.1, 2.0)};
  for (int i = 0; i < 8; ++i) recs.push_back(ok_record(0.1, 0.5));
  EXPECT_TRUE(evaluate_slo(spec_of("e2e:p50<1s", 0.8), recs, 10).sustainable);
  recs.back() = ok_record(0.1, 1.5);
  EXPECT_FALSE(evaluate_slo(spec_of("e2e:p50<1s", 0.8), recs, 10).sustainable);
}

TEST(SloWatchTest, WarmupIsIgnoredAndEmptySpecNeverBreaks) {
  SloWatch w(spec_of("ttft:p90<1s"), 10);
  for (int i = 0; i < 5; ++i) {
    auto r = failed_record();
    r.warmup = true;
    w.on_finished(r);
  }
  EXPECT_EQ(w.num_finished(), 0u);
  EXPECT_FALSE(w.certainly_broken({}));
  SloWatch none(SloSpec{}, 10);
  none.on_finished(failed_record());
  EXPECT_FALSE(none.certainly_broken({{100, -1}}));
}

BenchConfig sim_config(const std::string& url, double rate, size_t n, int64_t out, const std::string& slo) {
  BenchConfig c = test_util::sim_config(url, rate, n, out);
  c.load.request_timeout_s = 60;
  c.load.num_warmup = 5;
  c.slo = spec_of(slo);
  return c;
}

// 2 slots, 0.21 s a request: capacity 9.5 req/s. 200 requests at 200 req/s
// take >= 21 s to drain; TTFT p90 < 0.5 s is certainly broken within a second.
TEST(EarlyStopTest, OverloadedTrialStopsAsSoonAsItsVerdictIsCertain) {
  SimServerOptions so;
  so.num_slots = 2;
  so.first_token_delay_s = 0.020;
  so.per_token_delay_s = 0.010;
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  const size_t n = 200;
  const double full_drain_s = static_cast<double>(n) / server.capacity_rps(20);
  ASSERT_GT(full_drain_s, 20);
  auto cfg = sim_config(server.url(), 200, n, 20, "ttft:p90<500ms,tpot:p90<50ms");
  cfg.early_stop = true;
  Stopwatch clock;
  auto rep = run_benchmark(cfg).value();
  double wall_s = clock.elapsed_s();
  EXPECT_LT(wall_s, 5.0) << "a full run takes " << full_drain_s << " s";
  std::printf("stopped after %.2f s (a full run drains in %.1f s): %s\n", wall_s, full_drain_s,
              rep.slo.stop_reason.c_str());
  EXPECT_TRUE(rep.load.stopped_early);
  EXPECT_TRUE(rep.slo.stopped_early);
  EXPECT_FALSE(rep.slo.sustainable);
  EXPECT_EQ(rep.slo.first_broken, "ttft:p90<500ms");
  EXPECT_EQ(rep.slo.stop_reason.rfind("ttft:p90<500ms", 0), 0u) << rep.slo.stop_reason;
  EXPECT_EQ(rep.load.records.size() + rep.load.num_not_sent, n);
  EXPECT_GT(rep.load.num_not_sent, 0u);
  // The requests in flight were cancelled, not left running; they are the bench's own doing,
  // a category of their own: not failures, and in no latency or SLO figure (issue 22, finding 3:
  // "48 ok, 108 failed", all 108 cancelled).
  EXPECT_GT(rep.metrics.num_cancelled, 0u);
  EXPECT_EQ(rep.metrics.num_failed, 0u) << rep.to_json()["metrics"]["errors_by_kind"].dump();
  EXPECT_EQ(rep.metrics.errors_by_kind.count("cancelled"), 0u);
  EXPECT_EQ(rep.metrics.num_requests, rep.metrics.num_ok);
  EXPECT_EQ(rep.slo.num_measured, rep.metrics.num_ok);
  size_t num_cancelled = 0;
  for (const auto& r : rep.load.records) {
    EXPECT_GE(r.end_s, r.send_s);
    if (r.cancelled) {
      ++num_cancelled;
      EXPECT_FALSE(r.ok);
      EXPECT_EQ(record_to_json(r)["cancelled"], true);
    }
  }
  EXPECT_EQ(num_cancelled, rep.metrics.num_cancelled);
  // Its trial is a certain FAIL, never close to the limit (no repeats), and says so, never "inf".
  auto trial = rep.to_trial();
  EXPECT_FALSE(trial.sustainable);
  EXPECT_TRUE(trial.stopped_early);
  EXPECT_FALSE(std::isfinite(trial.worst_ratio));
  EXPECT_EQ(trial_verdict(trial), "FAIL (stopped early, the verdict certain, broke: ttft:p90<500ms)");
  auto j = rep.to_json();
  EXPECT_EQ(j["slo"]["stopped_early"], true);
  EXPECT_EQ(j["client"]["stopped_early"], true);
  EXPECT_EQ(j["client"]["not_sent"], rep.load.num_not_sent);
  // The text report (bench's output, a sweep's bench log) says why it stopped.
  std::string text = format_run(rep);
  EXPECT_NE(text.find("SLO: BROKEN (ttft:p90<500ms), certain before the run ended: stopped early\n    why: " +
                      rep.slo.stop_reason),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(fmt::format("{} cancelled by the early stop: not counted", rep.metrics.num_cancelled)),
            std::string::npos)
      << text;
  for (const char* inf : {" inf", "infx", "\"inf\""}) {
    EXPECT_EQ(text.find(inf), std::string::npos) << text;
    EXPECT_EQ(rep.to_json().dump().find(inf), std::string::npos) << inf;
    SearchResult one_trial;
    one_trial.trials.push_back(trial);
    EXPECT_EQ(one_trial.to_json().dump().find(inf), std::string::npos) << one_trial.to_json().dump();
  }
  // The cancelled requests closed their connections and the server dropped
  // them: a light run right after finds the slots free (a backlog left behind
  // would queue it for ~20 s).
  auto light = sim_config(server.url(), 5, 15, 20, "ttft:p90<500ms");
  light.load.num_warmup = 0;
  auto after = run_benchmark(light).value();
  EXPECT_TRUE(after.slo.sustainable) << after.to_json().dump(1);
  EXPECT_LT(after.metrics.ttft_s.max, 0.5);
}

// A light trial never stops, and measures what it measures without the watch.
TEST(EarlyStopTest, LightTrialRunsToTheEndWithTheSameResults) {
  SimServerOptions so;
  so.first_token_delay_s = 0.020;
  so.per_token_delay_s = 0.005;
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  auto cfg = sim_config(server.url(), 40, 60, 5, "ttft:p90<500ms,e2e:p99<2s");
  auto plain = run_benchmark(cfg).value();
  cfg.early_stop = true;
  auto watched = run_benchmark(cfg).value();
  EXPECT_FALSE(watched.load.stopped_early);
  EXPECT_FALSE(watched.slo.stopped_early);
  EXPECT_TRUE(plain.slo.sustainable);
  EXPECT_TRUE(watched.slo.sustainable);
  ASSERT_EQ(watched.load.records.size(), plain.load.records.size());
  EXPECT_EQ(watched.load.num_not_sent, 0u);
  EXPECT_EQ(watched.metrics.num_ok, plain.metrics.num_ok);
  EXPECT_EQ(watched.metrics.total_output_tokens, plain.metrics.total_output_tokens);
  for (size_t i = 0; i < plain.load.records.size(); ++i) {
    EXPECT_EQ(watched.load.records[i].scheduled_s, plain.load.records[i].scheduled_s);
    EXPECT_EQ(watched.load.records[i].output_tokens, plain.load.records[i].output_tokens);
  }
  EXPECT_NEAR(watched.metrics.ttft_s.p50, plain.metrics.ttft_s.p50, 0.005);
  EXPECT_NEAR(watched.metrics.e2e_s.p50, plain.metrics.e2e_s.p50, 0.005);
  EXPECT_EQ(watched.to_trial().sustainable, plain.to_trial().sustainable);
}

// Failures that never reach the count a percentile needs, or no SLO at all:
// the run goes to its end.
TEST(EarlyStopTest, NoStopWithoutAnSloOrWhileTheVerdictIsOpen) {
  SimServerOptions so;
  so.per_token_delay_s = 0.002;
  so.fail_every_n = 10;  // 10% of the requests fail
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  auto cfg = sim_config(server.url(), 100, 100, 3, "ttft:p50<1s");
  cfg.early_stop = true;
  auto rep = run_benchmark(cfg).value();
  EXPECT_FALSE(rep.load.stopped_early);  // 10 failures never reach the 51 that p50 needs
  EXPECT_TRUE(rep.slo.sustainable);
  cfg.slo = SloSpec{};
  auto none = run_benchmark(cfg).value();
  EXPECT_FALSE(none.load.stopped_early);
  EXPECT_EQ(none.load.records.size(), 100u);
}

}  // namespace
}  // namespace baton::bench

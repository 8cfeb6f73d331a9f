#include <gtest/gtest.h>

#include <cmath>

#include "bench/metrics.h"
#include "bench/slo.h"

namespace baton::bench {
namespace {

TEST(PercentileTest, LinearInterpolationLikeNumpy) {
  std::vector<double> x{4, 1, 3, 2};  // sorted: 1 2 3 4
  EXPECT_DOUBLE_EQ(percentile(x, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(x, 50), 2.5);   // rank 1.5
  EXPECT_DOUBLE_EQ(percentile(x, 90), 3.7);   // rank 2.7 -> 3 + 0.7 * (4 - 3)
  EXPECT_DOUBLE_EQ(percentile(x, 99), 3.97);  // rank 2.97
  EXPECT_DOUBLE_EQ(percentile(x, 100), 4.0);
  // numpy.percentile([15, 20, 35, 40, 50], 40) == 29.0
  EXPECT_DOUBLE_EQ(percentile({15, 20, 35, 40, 50}, 40), 29.0);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7.0);
  EXPECT_TRUE(std::isnan(percentile({}, 50)));
}

TEST(DistributionTest, SummaryStatistics) {
  auto d = summarize({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  EXPECT_EQ(d.count, 10u);
  EXPECT_DOUBLE_EQ(d.mean, 5.5);
  EXPECT_DOUBLE_EQ(d.p50, 5.5);
  EXPECT_DOUBLE_EQ(d.p90, 9.1);                   // rank 8.1
  EXPECT_DOUBLE_EQ(d.p95, 9.55);                  // rank 8.55
  EXPECT_DOUBLE_EQ(d.p99, 9.91);                  // rank 8.91
  EXPECT_NEAR(d.stddev, std::sqrt(8.25), 1e-12);  // population std
  EXPECT_DOUBLE_EQ(*d.statistic("median"), 5.5);
  EXPECT_DOUBLE_EQ(*d.statistic("p99.9"), 9.991);
  EXPECT_FALSE(d.statistic("p101").is_ok());
  EXPECT_FALSE(d.statistic("avg").is_ok());
  auto j = d.to_json(1000);
  EXPECT_DOUBLE_EQ(j["p50"].get<double>(), 5500.0);
}

RequestRecord record(double send, std::vector<double> chunks, double end, int64_t out) {
  RequestRecord r;
  r.scheduled_s = send - 0.01;
  r.ready_s = r.scheduled_s;
  r.send_s = send;
  r.chunk_s = chunks;
  r.first_token_s = chunks.empty() ? -1 : chunks.front();
  r.end_s = end;
  r.output_tokens = out;
  r.prompt_tokens = 100;
  r.usage_reported = true;
  r.ok = true;
  return r;
}

// A request sent at `send` that ended at `end` without success (`kind`).
RequestRecord unsuccessful(double send, double end, const std::string& kind) {
  RequestRecord r = record(send, {}, end, 0);
  r.ok = false;
  r.error_kind = kind;
  return r;
}

TEST(RequestRecordTest, PerRequestMetricsByHand) {
  auto r = record(1.0, {1.2, 1.25, 1.35}, 1.4, 3);
  EXPECT_NEAR(r.ttft_s(), 0.2, 1e-12);
  EXPECT_NEAR(r.e2e_s(), 0.4, 1e-12);
  EXPECT_NEAR(r.tpot_s(), 0.1, 1e-12);  // (0.4 - 0.2) / (3 - 1)
  auto itl = r.itl_s();
  ASSERT_EQ(itl.size(), 2u);
  EXPECT_NEAR(itl[0], 0.05, 1e-12);
  EXPECT_NEAR(itl[1], 0.10, 1e-12);
  EXPECT_NEAR(r.scheduling_delay_s(), 0.01, 1e-12);
}

TEST(RunMetricsTest, AggregatesExcludeWarmupAndCountErrors) {
  std::vector<RequestRecord> recs;
  auto warm = record(0.0, {0.5}, 0.9, 1);
  warm.warmup = true;
  recs.push_back(warm);
  recs.push_back(record(1.0, {1.2, 1.25, 1.35}, 1.4, 3));  // ttft .2 tpot .1 e2e .4
  recs.push_back(record(2.0, {2.1, 2.3}, 2.5, 4));         // ttft .1 tpot (0.5-0.1)/3 e2e .5
  recs.push_back(unsuccessful(2.5, 2.6, "http_5xx"));
  auto m = compute_metrics(recs);
  EXPECT_EQ(m.num_requests, 3u);
  EXPECT_EQ(m.num_ok, 2u);
  EXPECT_EQ(m.num_failed, 1u);
  EXPECT_EQ(m.errors_by_kind.at("http_5xx"), 1u);
  EXPECT_EQ(m.total_output_tokens, 7);
  EXPECT_EQ(m.total_input_tokens, 200);
  EXPECT_NEAR(m.duration_s, 1.6, 1e-12);  // first send 1.0 .. last end 2.6
  EXPECT_NEAR(m.request_throughput, 2 / 1.6, 1e-12);
  EXPECT_NEAR(m.output_token_throughput, 7 / 1.6, 1e-12);
  EXPECT_NEAR(m.ttft_s.mean, 0.15, 1e-12);
  EXPECT_NEAR(m.tpot_s.p50, (0.1 + 0.4 / 3) / 2, 1e-12);
  EXPECT_NEAR(m.e2e_s.p50, 0.45, 1e-12);
  EXPECT_EQ(m.itl_s.count, 3u);  // .05 .10 .20
  EXPECT_NEAR(m.itl_s.p50, 0.10, 1e-12);
  EXPECT_NEAR(m.scheduling_delay_s.p50, 0.01, 1e-12);
  EXPECT_NEAR(m.offered_rate, 2 / 1.5, 1e-12);  // 3 arrivals over 0.99 .. 2.49
  auto j = m.to_json();
  EXPECT_NEAR(j["ttft_ms"]["mean"].get<double>(), 150.0, 1e-9);
}

// Issue 22, finding 3: requests the bench cancelled itself (early stop) read as failures
// ("48 ok, 108 failed", all 108 cancelled). They are their own category: neither ok nor
// failed, in no latency and no SLO figure; the offered rate still counts them (they were sent).
TEST(RunMetricsTest, RequestsTheBenchCancelledAreNeitherOkNorFailed) {
  std::vector<RequestRecord> recs;
  recs.push_back(record(1.0, {1.2, 1.25, 1.35}, 1.4, 3));
  recs.push_back(unsuccessful(2.0, 2.2, "cancelled_by_early_stop"));
  recs.back().cancelled = true;
  auto m = compute_metrics(recs);
  EXPECT_EQ(m.num_requests, 1u);
  EXPECT_EQ(m.num_ok, 1u);
  EXPECT_EQ(m.num_failed, 0u);
  EXPECT_EQ(m.num_cancelled, 1u);
  EXPECT_TRUE(m.errors_by_kind.empty());
  EXPECT_NEAR(m.duration_s, 0.4, 1e-12) << "a cancelled request's end is not the run's";
  EXPECT_NEAR(m.offered_rate, 1.0, 1e-12);  // 2 arrivals, 1 s apart
  EXPECT_EQ(m.to_json()["num_cancelled"], 1);
  auto rep = evaluate_slo(parse_slo("ttft:p90<500ms,e2e:p99<1s").value(), recs, m.duration_s);
  EXPECT_EQ(rep.num_measured, 1u);
  EXPECT_EQ(rep.num_good, 1u);
  EXPECT_TRUE(rep.sustainable) << "a cancelled request is no evidence against the server";
  for (const auto& t : rep.targets) EXPECT_TRUE(std::isfinite(t.value_s)) << t.target.text;
}

TEST(SloTest, ParsesTargetsAndUnits) {
  auto s = parse_slo("ttft:p90<500ms, tpot:p90<40ms,e2e:p99<20s,itl:mean<=150us");
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  ASSERT_EQ(s->targets.size(), 4u);
  EXPECT_EQ(s->targets[0].metric, "ttft");
  EXPECT_EQ(s->targets[0].statistic, "p90");
  EXPECT_DOUBLE_EQ(s->targets[0].limit_s, 0.5);
  EXPECT_DOUBLE_EQ(s->targets[2].limit_s, 20.0);
  EXPECT_DOUBLE_EQ(s->targets[3].limit_s, 150e-6);
  EXPECT_NE(parse_slo("foo:p90<1s").status().message().find("unknown metric"), std::string::npos);
  EXPECT_NE(parse_slo("ttft:p90<500").status().message().find("unit"), std::string::npos);
  EXPECT_NE(parse_slo("ttft:q90<5ms").status().message().find("unknown statistic"), std::string::npos);
  EXPECT_NE(parse_slo("ttft:p90<5ms,ttft:p90<6ms").status().message().find("twice"), std::string::npos);
  EXPECT_FALSE(parse_slo("ttft<5ms").is_ok());
  EXPECT_FALSE(parse_slo("ttft:p90<5ms", 1.5).is_ok());
}

TEST(SloTest, GoodputAndSustainabilityByHand) {
  std::vector<RequestRecord> recs;
  recs.push_back(record(1.0, {1.2, 1.25, 1.35}, 1.4, 3));  // ttft .2 tpot .1
  recs.push_back(record(2.0, {2.1, 2.3}, 2.5, 4));         // ttft .1 tpot .1333
  recs.push_back(record(3.0, {3.05, 3.1}, 3.2, 2));        // ttft .05 tpot .15
  recs.push_back(record(4.0, {4.5, 4.6}, 4.7, 2));         // ttft .5 tpot .2
  // Per request ttft < 0.3 and tpot < 0.14: good are #1 and #2.
  auto slo = parse_slo("ttft:p50<300ms,tpot:p50<140ms").value();
  auto rep = evaluate_slo(slo, recs, 4.0);
  EXPECT_EQ(rep.num_good, 2u);
  EXPECT_DOUBLE_EQ(rep.attainment, 0.5);
  EXPECT_DOUBLE_EQ(rep.goodput_rps, 0.5);
  // ttft p50 = (0.1 + 0.2) / 2 = 0.15 passes; tpot p50 = (0.1333 + 0.15) / 2 = 0.1417 breaks.
  ASSERT_EQ(rep.targets.size(), 2u);
  EXPECT_TRUE(rep.targets[0].passed);
  EXPECT_NEAR(rep.targets[0].value_s, 0.15, 1e-12);
  EXPECT_FALSE(rep.targets[1].passed);
  EXPECT_FALSE(rep.sustainable);
  EXPECT_EQ(rep.first_broken, "tpot:p50<140ms");
  // Looser: passes, unless attainment is required.
  auto loose = parse_slo("ttft:p50<300ms,tpot:p50<150ms", 0.9).value();
  auto rep2 = evaluate_slo(loose, recs, 4.0);
  EXPECT_TRUE(rep2.targets[1].passed);
  EXPECT_FALSE(rep2.attainment_ok);
  EXPECT_FALSE(rep2.sustainable);
  EXPECT_EQ(rep2.first_broken, "attainment");
  loose.min_attainment = 0;
  EXPECT_TRUE(evaluate_slo(loose, recs, 4.0).sustainable);
}

TEST(SloTest, FailedRequestsCountAsInfinitelySlow) {
  std::vector<RequestRecord> recs;
  recs.push_back(record(1.0, {1.1, 1.2}, 1.3, 2));
  auto bad = record(2.0, {}, 2.1, 0);
  bad.ok = false;
  recs.push_back(bad);
  auto slo = parse_slo("e2e:p90<1s").value();
  auto rep = evaluate_slo(slo, recs, 2.0);
  EXPECT_FALSE(rep.sustainable);
  EXPECT_TRUE(std::isinf(rep.targets[0].value_s));
  EXPECT_EQ(rep.num_good, 1u);
}

}  // namespace
}  // namespace baton::bench

#include <gtest/gtest.h>

#include "bench/bench_result.h"
#include "bench/chart_js_asset.h"
#include "bench/html_report.h"
#include "bench/workload.h"

namespace baton::bench {
namespace {

RunReport fake_run(double rate, bool sustainable) {
  RunReport r;
  r.target_rate = rate;
  RequestRecord rec;
  rec.scheduled_s = rec.ready_s = 0;
  rec.send_s = 0.001;
  rec.first_token_s = 0.101;
  rec.chunk_s = {0.101, 0.111, 0.121};
  rec.end_s = 0.121;
  rec.output_tokens = 3;
  rec.prompt_tokens = 10;
  rec.ok = true;
  rec.usage_reported = true;
  r.load.records = {rec};
  r.metrics = compute_metrics(r.load.records);
  r.slo.sustainable = sustainable;
  r.slo.first_broken = sustainable ? "" : "ttft:p90<50ms";
  return r;
}

// The result of deployment "agg" under `slo` ("" for none) with these runs.
BenchOutcome agg_outcome(const std::string& slo, std::vector<RunReport> runs) {
  BenchOutcome o;
  o.label = "agg";
  if (!slo.empty()) o.slo = parse_slo(slo).value();
  o.runs = std::move(runs);
  return o;
}

Json doc_for(const std::string& label, double max_rate) {
  BenchOutcome o;
  o.label = label;
  o.slo = parse_slo("ttft:p90<500ms").value();
  o.runs = {fake_run(max_rate / 2, true), fake_run(max_rate, true), fake_run(max_rate * 2, false)};
  return result_document(o);
}

TEST(BenchResultTest, MaxSustainableFromRunsAndDocument) {
  auto doc = doc_for("agg", 4.0);
  EXPECT_EQ(doc["format"], kResultFormat);
  EXPECT_DOUBLE_EQ(doc["max_sustainable_rps"].get<double>(), 4.0);
  EXPECT_EQ(doc["runs"].size(), 3u);
  EXPECT_EQ(doc["distribution_run"], 1);  // the highest sustainable run
  EXPECT_EQ(doc["cdf"]["ttft_ms"].size(), 200u);
  EXPECT_NEAR(doc["cdf"]["ttft_ms"][0][0].get<double>(), 100.0, 1e-9);
  // No SLO: no verdict.
  BenchOutcome none;
  none.runs = {fake_run(1, true)};
  EXPECT_FALSE(max_sustainable_rps(none).has_value());
}

TEST(BenchResultTest, CompareRatiosAgainstBaseline) {
  std::vector<Json> docs{doc_for("agg", 4.0), doc_for("pd-1p1d", 6.0), doc_for("pd-2p1d", 10.0)};
  auto rows = compare_results(docs, "agg").value();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_DOUBLE_EQ(*rows[0].ratio, 1.0);
  EXPECT_DOUBLE_EQ(*rows[1].ratio, 1.5);
  EXPECT_DOUBLE_EQ(*rows[2].ratio, 2.5);
  auto text = format_compare(rows, "agg");
  EXPECT_NE(text.find("2.50x"), std::string::npos) << text;
  auto by_pd = compare_results(docs, "pd-2p1d").value();
  EXPECT_DOUBLE_EQ(*by_pd[0].ratio, 0.4);
  EXPECT_NE(compare_results(docs, "nope").status().message().find("baseline 'nope'"), std::string::npos);
  docs.push_back(doc_for("agg", 1.0));
  EXPECT_NE(compare_results(docs, "").status().message().find("share the label 'agg'"), std::string::npos);
}

TEST(BenchResultTest, CsvHasOneRowPerRun) {
  auto csv = runs_csv({doc_for("a", 2.0), doc_for("b,c", 2.0)});
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
  EXPECT_NE(csv.find("\"b,c\",2,4,"), std::string::npos) << csv;  // quoted label
  EXPECT_NE(csv.find(",true,"), std::string::npos);
}

TEST(HtmlReportTest, StoppedEarlyTrialsSaySo) {
  RunReport stopped = fake_run(8.0, false);
  stopped.slo.stopped_early = true;
  stopped.slo.stop_reason = "ttft:p90<500ms: 12 of 40 measured requests already over the limit";
  BenchOutcome o = agg_outcome("ttft:p90<500ms", {fake_run(4.0, true), stopped});
  auto html = render_html_report({result_document(o)}, "", "t");
  EXPECT_NE(html.find("(stopped early, certain: ttft:p90&lt;500ms: 12 of 40"), std::string::npos);
  const std::string table = html.substr(html.find("<h2>Runs</h2>"), html.find("</table>") - html.find("<h2>Runs</h2>"));
  EXPECT_EQ(table.find("stopped early", table.find("stopped early") + 1), std::string::npos) << "only the stopped run";
}

// Issue 22, finding 5: a single run's headline read "max sustainable – req/s". It states the
// run's verdict, where it ran (offered rate first) and, when broken, what broke.
TEST(HtmlReportTest, ASingleRunsHeadlineStatesItsVerdict) {
  RunReport broken = fake_run(1.0, false);
  TargetResult t;
  t.target = parse_slo("ttft:p90<50ms").value().targets[0];
  t.value_s = 0.541;
  broken.slo.targets = {t};
  broken.metrics.offered_rate = 0.97;
  BenchOutcome o = agg_outcome("ttft:p90<50ms", {broken});
  auto html = render_html_report({result_document(o)}, "", "t");
  EXPECT_EQ(html.substr(0, html.find("<script")).find("max sustainable"), std::string::npos);
  EXPECT_NE(html.find("agg: single run</div><div class=\"v bad\">SLO broken</div>"), std::string::npos)
      << html.substr(0, 4000);
  EXPECT_NE(html.find("at 0.97 req/s offered (1.00 req/s requested); broke ttft:p90&lt;50ms (measured 541.0 ms)"),
            std::string::npos);
  o.runs = {fake_run(1.0, true)};
  html = render_html_report({result_document(o)}, "", "t");
  EXPECT_NE(html.find("<div class=\"v ok\">SLO met</div>"), std::string::npos);
  o.slo = {};
  o.runs = {fake_run(1.0, true)};  // one arrival: no offered rate
  html = render_html_report({result_document(o)}, "", "t");
  EXPECT_NE(html.find("agg: single run, no SLO given</div><div class=\"v\">no verdict</div><div class=\"l\">at "
                      "1.00 req/s requested (under 2 arrivals: no offered rate)"),
            std::string::npos);
}

// Issue 22, findings 4 and 5: a search's headline leads with the offered load, then the requested
// one; a trial stopped early is no run for the CDFs (its slowest requests were cancelled).
TEST(HtmlReportTest, ASearchLeadsWithTheOfferedLoadAndItsCdfsSkipStoppedTrials) {
  RunReport passed = fake_run(4.0, true);
  passed.metrics.offered_rate = 3.5;
  RunReport stopped = fake_run(8.0, false);
  stopped.slo.stopped_early = true;
  stopped.slo.stop_reason = "ttft:p90<500ms: 12 of 40 measured requests already over the limit";
  BenchOutcome o = agg_outcome("ttft:p90<500ms", {passed, stopped});
  o.search = SearchResult{};
  o.search->max_passed_rate = 4.0;
  o.search->min_failed_rate = 8.0;
  o.search->converged = true;
  Json doc = result_document(o);
  EXPECT_EQ(doc["max_sustainable_offered_rps"], 3.5);
  EXPECT_EQ(doc["distribution_run"], 0);
  auto html = render_html_report({doc}, "", "t");
  EXPECT_NE(html.find("agg: max sustainable offered load</div><div class=\"v\">3.50 req/s</div><div class=\"l\">"
                      "4.00 req/s requested; 2 trial(s), 1 stopped early"),
            std::string::npos);
  EXPECT_NE(html.find("ok\">met (the CDFs' run)"), std::string::npos);
  // No SLO met anywhere and the last run stopped: the CDFs show the last run that completed.
  o.runs = {fake_run(4.0, false), stopped};
  o.search->max_passed_rate = 0;
  EXPECT_EQ(result_document(o)["distribution_run"], 0);
}

// Issue 22, finding 3: the client's lag is a note after the table, never a banner at the top.
TEST(HtmlReportTest, ClientLagIsANoteAndPrefixCacheHitsAWarning) {
  RunReport r = fake_run(2.0, true);
  r.load.fell_behind = true;
  r.load.warning = "the client sent late (lag)";
  r.prefix_cache = check_prefix_cache(0.0, 9920.0, 10000, false);
  r.metrics.offered_rate = 1.9;
  auto html = render_html_report({result_document(agg_outcome("ttft:p90<500ms", {r}))}, "", "t");
  size_t note = html.find("<div class=\"note\">agg, 1.90 req/s offered (2.00 req/s requested): the client sent late");
  size_t table = html.find("<h2>Runs</h2>");
  size_t warn = html.find(
      "<div class=\"warn\"><b>agg, 1.90 req/s offered (2.00 req/s requested):</b> the server "
      "reported 9920 prefix-cache hit tokens (99% of the 10000 prompt tokens sent)");
  ASSERT_NE(note, std::string::npos);
  ASSERT_NE(warn, std::string::npos);
  EXPECT_GT(note, table);
  EXPECT_LT(warn, table);
  EXPECT_EQ(html.find("!!!"), std::string::npos);
}

TEST(HtmlReportTest, RunsOfASweepShowEachInstancesPeakQueue) {
  auto plain = render_html_report({doc_for("agg", 4.0)}, "", "t");
  EXPECT_EQ(plain.find("instances: waiting max"), std::string::npos) << "no column without instance data";
  auto doc = doc_for("pd", 4.0);
  doc["runs"][0]["instances"] = Json::array({
      {{"instance", "prefill-0"}, {"role", "prefill"}, {"samples", 9}, {"max_waiting", 12}, {"max_kv_usage", 0.45}},
      {{"instance", "decode-<0>"}, {"role", "decode"}, {"samples", 0}},
      {{"instance", "router"}, {"role", "router"}, {"samples", 9}, {"max_in_flight", 40}},
  });
  auto html = render_html_report({doc}, "", "t");
  EXPECT_NE(html.find("<th class=\"t\">instances: waiting max (KV max)</th>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"t\">prefill-0 12 (45%), decode-&lt;0&gt; no sample</td>"), std::string::npos);
}

TEST(HtmlReportTest, SelfContainedWithChartJsAndData) {
  EXPECT_GT(chart_js_source().size(), 100'000u);
  EXPECT_NE(chart_js_source().find("Chart.js v4"), std::string::npos);
  auto doc = doc_for("agg</script><b>", 4.0);
  auto html = render_html_report({doc}, "", "t");
  EXPECT_NE(html.find(std::string(chart_js_source().substr(0, 200))), std::string::npos);
  EXPECT_NE(html.find("vsRate('c-ttft'"), std::string::npos);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  // A label cannot close the data script or inject markup.
  EXPECT_EQ(html.find("agg</script>"), std::string::npos);
  EXPECT_NE(html.find("agg&lt;/script&gt;"), std::string::npos);
}

// A multi-turn workload's rate counts sessions, not requests: the report says so.
TEST(HtmlReportTest, MultiTurnRatesAreSessionsPerSecond) {
  EXPECT_STREQ(rate_unit("multiturn"), "sessions/s");
  EXPECT_STREQ(rate_unit("trace"), "req/s");
  EXPECT_EQ(result_rate_unit(Json::object()), "req/s");
  BenchOutcome o = agg_outcome("ttft:p90<500ms", {fake_run(2.0, true), fake_run(4.0, false)});
  for (auto& r : o.runs) r.workload_describe = {{"kind", "multiturn"}};
  const Json doc = result_document(o);
  EXPECT_EQ(result_rate_unit(doc), "sessions/s");
  auto html = render_html_report({doc}, "", "t");
  EXPECT_NE(html.find("2.00 sessions/s requested"), std::string::npos);
  EXPECT_NE(html.find("<th>requested sessions/s</th>"), std::string::npos);
  EXPECT_NE(html.find("\"unit\":\"sessions/s\""), std::string::npos);
  auto plain = render_html_report({doc_for("agg", 4.0)}, "", "t");
  EXPECT_NE(plain.find("<th>requested req/s</th>"), std::string::npos);
}

}  // namespace
}  // namespace baton::bench

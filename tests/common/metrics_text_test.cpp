// Reading the Prometheus text format back: what MetricsRegistry renders
// (and every baton server answers on /metrics) sums per metric name.
#include <gtest/gtest.h>

#include <cmath>

#include "common/metrics_registry.h"
#include "common/metrics_text.h"

namespace baton {
namespace {

TEST(MetricsTextTest, ReadsWhatTheRegistryRendersSummedOverLabels) {
  MetricsRegistry r;
  r.gauge("baton:num_requests_waiting", "Waiting.", {{"model_name", "m"}}).set(7);
  r.counter("baton:request_success_total", "Done.", {{"finished_reason", "stop"}}).inc(3);
  r.counter("baton:request_success_total", "Done.", {{"finished_reason", "length"}}).inc(4);
  r.gauge("baton:kv_cache_usage_perc", "Usage.").set(0.25);
  auto& h = r.histogram("baton:time_to_first_token_seconds", "TTFT.", {0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  auto m = sum_metrics_by_name(r.render());
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->at("baton:num_requests_waiting"), 7);
  EXPECT_EQ(m->at("baton:request_success_total"), 7);  // stop + length
  EXPECT_DOUBLE_EQ(m->at("baton:kv_cache_usage_perc"), 0.25);
  EXPECT_EQ(m->at("baton:time_to_first_token_seconds_count"), 2);
  EXPECT_DOUBLE_EQ(m->at("baton:time_to_first_token_seconds_sum"), 0.55);
  EXPECT_EQ(m->count("baton:time_to_first_token_seconds"), 0u);  // only _bucket, _sum, _count
}

TEST(MetricsTextTest, LabelValuesMayHoldBracesQuotesAndSpaces) {
  auto m = sum_metrics_by_name(
      "# HELP x Something.\n"
      "# TYPE x gauge\n"
      "x{path=\"/a b}\",q=\"say \\\"hi\\\" }\"} 2\n"
      "\n"
      "y 1.5e3 1700000000000\r\n"
      "z{} +Inf\n"
      "  w NaN\n");
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->at("x"), 2);
  EXPECT_EQ(m->at("y"), 1500);  // a timestamp may follow the value
  EXPECT_TRUE(std::isinf(m->at("z")));
  EXPECT_TRUE(std::isnan(m->at("w")));
}

TEST(MetricsTextTest, ALineThatIsNotASampleIsAnErrorThatQuotesIt) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c :
       {Case{"a 1\n{x=\"1\"} 2\n", "line 2: no metric name"},
        Case{"a{x=\"1\" 2\n", "line 1: labels without a closing '}'"}, Case{"a\n", "line 1: no value after the name"},
        Case{"a 12abc\n", "line 1: the value is not a number: 'a 12abc'"},
        Case{"a 1 2 3\n", "line 1: the value is not a number"},
        Case{"<html>oops</html>\n", "line 1: no metric name: '<html>oops</html>'"}}) {
    auto m = sum_metrics_by_name(c.text);
    ASSERT_FALSE(m.is_ok()) << c.text;
    EXPECT_NE(m.status().message().find(c.says), std::string::npos) << m.status().message();
  }
  auto empty = sum_metrics_by_name("");
  ASSERT_TRUE(empty.is_ok());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace baton

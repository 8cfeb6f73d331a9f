#include "common/metrics_registry.h"

#include <thread>

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(MetricsRegistryTest, RendersPrometheusText) {
  MetricsRegistry r;
  r.counter("x_total", "An x.", {{"k", "v\"q"}}).inc(2);
  r.gauge("g", "A gauge.").set(0.25);
  Histogram& h = r.histogram("h_seconds", "A histogram.", {0.1, 1.0}, {{"m", "a"}});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  std::string text = r.render();
  EXPECT_NE(text.find("# HELP x_total An x.\n# TYPE x_total counter\nx_total{k=\"v\\\"q\"} 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE g gauge\ng 0.25\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{m=\"a\",le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{m=\"a\",le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{m=\"a\",le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_sum{m=\"a\"} 5.55\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_count{m=\"a\"} 3\n"), std::string::npos) << text;
}

TEST(MetricsRegistryTest, SameSeriesIsSharedAndCountsAreThreadSafe) {
  MetricsRegistry r;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        r.counter("c_total", "c").inc();
        r.histogram("h", "h", {1.0}).observe(0.5);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(r.counter("c_total", "c").value(), 40000);
  EXPECT_EQ(r.histogram("h", "h", {1.0}).snapshot().count, 40000u);
}

}  // namespace
}  // namespace baton

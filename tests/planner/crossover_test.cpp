#include "planner/crossover.h"

#include <gtest/gtest.h>

#include "planner/plan_report.h"

namespace baton::planner {
namespace {

// A GPU-like model: prefill tokens are costly and stall decodes in agg.
PlanInputs base() {
  PlanInputs in;
  in.workload.input_len = {1024, 1024};
  in.workload.output_len = {32, 32};
  in.workload.num_requests = 120;
  in.slo = bench::parse_slo("ttft:p90<1s,tpot:p90<40ms").value();
  in.model = StepTimeModel(StepTimeModel::Coefficients{0.006, 3e-5, 0, 5e-5, 0});
  in.num_gpus = 2;
  in.num_kv_blocks = 8192;
  in.token_budgets = {8192};
  in.transfer = TransferModel{.latency_s = 0.001, .bytes_per_s = 20e9, .kv_bytes_per_token = 131072};
  return in;
}

TEST(CrossoverTest, MapsAggAgainstTheBestPdSplitOverTheGrid) {
  auto map = crossover_map(base(), input_len_axis({256, 4096}), tpot_limit_axis({30, 200}));
  ASSERT_TRUE(map.is_ok()) << map.status().to_string();
  ASSERT_EQ(map->cells.size(), 4u);
  for (const CrossoverCell& c : map->cells) {
    EXPECT_EQ(c.best_pd, "pd-1p1d");
    if (c.agg_rate > 0) {
      EXPECT_NEAR(c.ratio, c.best_pd_rate / c.agg_rate, 1e-12);
    }
  }
  // Row-major, y outer: the first row is the 30 ms limit.
  EXPECT_EQ(map->cells[0].y, 30);
  EXPECT_EQ(map->cells[1].x, 4096);
  // A tight TPOT limit with 4K prompts: an 8K-budget agg step holding a whole
  // 4K prefill (0.13 s) breaks TPOT; the decode instance of PD never runs a
  // prefill. PD's advantage there is larger than with a loose limit.
  const CrossoverCell& tight_long = map->cells[1];
  const CrossoverCell& loose_long = map->cells[3];
  EXPECT_GT(tight_long.ratio, loose_long.ratio);
  EXPECT_TRUE(map->to_json().contains("cells"));
}

TEST(CrossoverTest, AxesRefuseWhatTheyCannotSet) {
  PlanInputs in = base();
  in.slo = bench::parse_slo("ttft:p90<1s").value();
  EXPECT_FALSE(tpot_limit_axis({10}).apply(in, 10).is_ok());
  EXPECT_FALSE(prefix_hit_axis({2}).apply(in, 2).is_ok());
  EXPECT_TRUE(prefix_hit_axis({0.5}).apply(in, 0.5).is_ok());
  EXPECT_EQ(in.workload.kind, "prefix");
  PlanInputs one = base();
  one.num_gpus = 1;
  EXPECT_FALSE(crossover_map(one, input_len_axis({128}), output_len_axis({16})).is_ok());
}

TEST(PlanReportTest, TheReportNamesTheRecommendationAndEscapesWhatItShows) {
  PlanInputs in = base();
  auto plan = make_plan(in);
  ASSERT_TRUE(plan.is_ok());
  auto map = crossover_map(in, input_len_axis({512}), output_len_axis({16, 64}));
  ASSERT_TRUE(map.is_ok());
  PlanReportInputs r;
  r.title = "plan <for> test";
  r.inputs = Json{{"model", "<script>"}};
  r.model = in.model.to_json();
  r.fit.num_samples = 1;
  r.fit.rel_errors = {0.05};
  r.fit_labels = {"decode batch 1"};
  r.plan = *plan;
  r.maps = {*map};
  const std::string html = render_plan_html(r);
  const DeploymentPlan& best = plan->deployments[static_cast<size_t>(plan->recommended)];
  EXPECT_NE(html.find("Recommended: <b>" + best.name + "</b>"), std::string::npos);
  EXPECT_NE(html.find("plan &lt;for&gt; test"), std::string::npos);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("decode batch 1"), std::string::npos);
  EXPECT_NE(html.find("+5.0%"), std::string::npos);
  EXPECT_NE(html.find("output tokens"), std::string::npos);
}

}  // namespace
}  // namespace baton::planner

#include "planner/planner.h"

#include <gtest/gtest.h>

namespace baton::planner {
namespace {

constexpr double kStep = 0.01;

PlanInputs inputs(int gpus, const std::string& slo) {
  PlanInputs in;
  in.workload.input_len = {64, 64};
  in.workload.output_len = {10, 10};
  in.workload.num_requests = 200;
  in.workload.arrival.kind = bench::ArrivalKind::kConstant;
  in.slo = bench::parse_slo(slo).value();
  in.model = StepTimeModel::constant(kStep);
  in.num_gpus = gpus;
  in.num_kv_blocks = 4096;
  in.router_hop_s = 0;
  in.token_budgets = {8192};
  return in;
}

TEST(PlannerTest, OneSequenceAtATimeSustainsOneOverItsServiceTime) {
  // Evenly spaced arrivals, service S = 10 steps = 0.1 s, one at a time: the
  // queue stays empty up to 1/S = 10 req/s and grows without bound past it.
  PlanInputs in = inputs(1, "e2e:p50<200ms");
  in.max_num_seqs = 1;
  std::string broken;
  const DeploymentSpec d = [&] {
    DeploymentSpec s;
    s.name = "agg";
    s.num_agg = 1;
    SimInstanceOptions o;
    o.num_kv_blocks = 4096;
    o.scheduler.max_num_seqs = 1;
    s.agg = s.prefill = s.decode = o;
    return s;
  }();
  auto rate = max_sustainable_rate(in, d, in.model, &broken);
  ASSERT_TRUE(rate.is_ok()) << rate.status().to_string();
  EXPECT_GT(*rate, 10.0 * 0.96);
  EXPECT_LT(*rate, 10.0 * 1.04);
  EXPECT_NE(broken.find("e2e"), std::string::npos);
}

TEST(PlannerTest, ThePlanCoversAggAndEverySplitAndRecommendsTheBest) {
  PlanInputs in = inputs(3, "ttft:p90<100ms,tpot:p90<20ms");
  auto plan = make_plan(in);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  ASSERT_EQ(plan->deployments.size(), 3u);
  EXPECT_EQ(plan->deployments[0].name, "agg-3gpu");
  EXPECT_EQ(plan->deployments[1].name, "pd-1p2d");
  EXPECT_EQ(plan->deployments[2].name, "pd-2p1d");
  ASSERT_GE(plan->recommended, 0);
  for (const DeploymentPlan& p : plan->deployments) {
    EXPECT_LE(p.max_rate, plan->deployments[static_cast<size_t>(plan->recommended)].max_rate) << p.name;
    EXPECT_GT(p.max_rate, 0) << p.name;
  }
  EXPECT_EQ(plan->rate_unit, "req/s");
  EXPECT_TRUE(plan->to_json().contains("recommended"));
}

TEST(PlannerTest, ATpotLimitPicksASmallerTokenBudget) {
  // Prefill tokens make a step longer: a whole 4K prompt in one step stalls
  // every decode for 80 ms. Under a 40 ms TPOT limit the planner chunks.
  PlanInputs in = inputs(1, "tpot:p90<40ms");
  in.workload.input_len = {4096, 4096};
  in.workload.output_len = {64, 64};
  in.workload.arrival.kind = bench::ArrivalKind::kPoisson;
  in.model = StepTimeModel(StepTimeModel::Coefficients{kStep, 2e-5, 0, 0, 0});
  in.token_budgets = {512, 8192};
  auto plan = make_plan(in);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  const DeploymentPlan& agg = plan->deployments[0];
  EXPECT_EQ(agg.prefill_budget, 512);
  EXPECT_GT(agg.max_rate, 0);
}

TEST(PlannerTest, TheBandWidensWithTheModelsError) {
  PlanInputs in = inputs(1, "e2e:p90<300ms");
  in.max_num_seqs = 1;  // capacity 1 / (10 steps) = 10 req/s under the model
  in.model_rel_error = 0.2;
  auto plan = make_plan(in);
  ASSERT_TRUE(plan.is_ok());
  const DeploymentPlan& agg = plan->deployments[0];
  EXPECT_LT(agg.rate_low, agg.max_rate);
  EXPECT_GT(agg.rate_high, agg.max_rate);
  EXPECT_NEAR(agg.rate_low, 10 / 1.2, 0.5);  // every step 20% longer
  EXPECT_NEAR(agg.rate_high, 10 / 0.8, 0.5);
}

TEST(PlannerTest, RefusesAPlanWithoutAnSloOrGpus) {
  PlanInputs in = inputs(1, "ttft:p90<1s");
  in.slo = bench::SloSpec{};
  EXPECT_FALSE(make_plan(in).is_ok());
  in = inputs(0, "ttft:p90<1s");
  EXPECT_FALSE(make_plan(in).is_ok());
}

}  // namespace
}  // namespace baton::planner

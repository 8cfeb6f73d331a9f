// The simulator against cases whose answer is known in closed form: a
// constant step time, one instance, deterministic queues, an M/D/1 queue.
#include "planner/cluster_sim.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "bench/slo.h"

namespace baton::planner {
namespace {

constexpr double kStep = 0.01;  // s per step, whatever the step holds

bench::Workload fixed_workload(const std::vector<double>& arrivals, int64_t prompt, int64_t output,
                               bool shared_prefix = false) {
  bench::Workload w;
  w.kind = "random";
  for (size_t i = 0; i < arrivals.size(); ++i) {
    bench::RequestSpec r;
    r.arrival_s = arrivals[i];
    r.prompt = {{shared_prefix ? 7u : 1000 + i, prompt}};
    r.prompt_tokens = prompt;
    r.output_tokens = output;
    w.requests.push_back(r);
  }
  return w;
}

SimInstanceOptions role(int max_seqs, int budget = 8192, int blocks = 4096) {
  SimInstanceOptions o;
  o.scheduler.max_num_seqs = max_seqs;
  o.scheduler.max_num_batched_tokens = budget;
  o.num_kv_blocks = blocks;
  return o;
}

DeploymentSpec agg(int replicas, SimInstanceOptions o) {
  DeploymentSpec d;
  d.name = "agg";
  d.num_agg = replicas;
  d.agg = d.prefill = d.decode = o;
  return d;
}

TEST(ClusterSimTest, OneRequestAloneTakesOneStepPerToken) {
  auto w = fixed_workload({0.0}, 100, 20);
  auto r = simulate(agg(1, role(8)), w, StepTimeModel::constant(kStep), TransferModel{});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const bench::RequestRecord& rec = r->records[0];
  EXPECT_TRUE(rec.ok);
  EXPECT_NEAR(rec.ttft_s(), kStep, 1e-12);      // the prefill step samples the first token
  EXPECT_NEAR(rec.e2e_s(), 20 * kStep, 1e-12);  // then one decode step per token
  EXPECT_NEAR(rec.tpot_s(), kStep, 1e-12);
  EXPECT_EQ(rec.output_tokens, 20);
}

TEST(ClusterSimTest, OneSequenceAtATimeIsADeterministicQueue) {
  // Five requests at t = 0, one at a time: the k-th ends at (k+1) * N steps.
  auto w = fixed_workload(std::vector<double>(5, 0.0), 64, 10);
  auto r = simulate(agg(1, role(/*max_seqs=*/1)), w, StepTimeModel::constant(kStep), TransferModel{});
  ASSERT_TRUE(r.is_ok());
  for (int k = 0; k < 5; ++k) {
    EXPECT_NEAR(r->records[k].end_s, (k + 1) * 10 * kStep, 1e-9) << k;
    EXPECT_NEAR(r->records[k].ttft_s(), (k * 10 + 1) * kStep, 1e-9) << k;
  }
  EXPECT_NEAR(r->duration_s, 50 * kStep, 1e-9);
  EXPECT_NEAR(r->instances[0].busy_fraction, 1.0, 1e-9);
}

TEST(ClusterSimTest, BatchingServesTogetherAndReplicasSplitTheLoad) {
  auto w = fixed_workload(std::vector<double>(8, 0.0), 64, 10);
  auto batched = simulate(agg(1, role(8)), w, StepTimeModel::constant(kStep), TransferModel{});
  ASSERT_TRUE(batched.is_ok());
  for (const auto& rec : batched->records) EXPECT_NEAR(rec.end_s, 10 * kStep, 1e-9);
  // Two replicas of one sequence each: round robin, four requests each.
  auto two = simulate(agg(2, role(1)), w, StepTimeModel::constant(kStep), TransferModel{});
  ASSERT_TRUE(two.is_ok());
  EXPECT_NEAR(two->duration_s, 4 * 10 * kStep, 1e-9);
}

TEST(ClusterSimTest, TheEnginesTokenBudgetMovesThePrediction) {
  // The engine's own scheduler chunks a 512-token prompt at a 128-token
  // budget: four steps to the first token instead of one.
  auto w = fixed_workload({0.0}, 512, 4);
  auto whole = simulate(agg(1, role(8, 8192)), w, StepTimeModel::constant(kStep), TransferModel{});
  auto chunked = simulate(agg(1, role(8, 128)), w, StepTimeModel::constant(kStep), TransferModel{});
  ASSERT_TRUE(whole.is_ok() && chunked.is_ok());
  EXPECT_NEAR(whole->records[0].ttft_s(), kStep, 1e-12);
  EXPECT_NEAR(chunked->records[0].ttft_s(), 4 * kStep, 1e-12);
}

TEST(ClusterSimTest, TheStepShapeReachesTheModel) {
  // Prefill tokens cost 1e-5 s each; a step costs at least kStep (the
  // weights' stream), which a long enough prompt's GEMMs hide: TTFT grows
  // with the prompt once its tokens outweigh the floor.
  const StepTimeModel model(StepTimeModel::Coefficients{kStep, 1e-5, 0, 0, 0});
  auto w = fixed_workload({0.0}, 3000, 3);
  auto r = simulate(agg(1, role(8)), w, model, TransferModel{});
  ASSERT_TRUE(r.is_ok());
  EXPECT_NEAR(r->records[0].ttft_s(), 3000 * 1e-5, 1e-12);
  EXPECT_NEAR(r->records[0].e2e_s(), 3000 * 1e-5 + 2 * kStep, 1e-12);
  auto short_prompt = simulate(agg(1, role(8)), fixed_workload({0.0}, 500, 3), model, TransferModel{});
  ASSERT_TRUE(short_prompt.is_ok());
  EXPECT_NEAR(short_prompt->records[0].ttft_s(), kStep, 1e-12);  // 5 ms of GEMMs under a 10 ms floor
}

TEST(ClusterSimTest, EachRequestWhosePromptEndsPaysItsHostWork) {
  // 1 ms per first token (the host work of a request whose prompt is done):
  // four prompts that share a step pay it four times; their decode steps,
  // which sample no first token, do not.
  const StepTimeModel model(StepTimeModel::Coefficients{kStep, 0, 0, 0, 0, 1e-3});
  auto w = fixed_workload({0.0, 0.0, 0.0, 0.0}, 100, 3);
  auto r = simulate(agg(1, role(8)), w, model, TransferModel{});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  for (const bench::RequestRecord& rec : r->records) {
    EXPECT_NEAR(rec.ttft_s(), kStep + 4e-3, 1e-12);
    EXPECT_NEAR(rec.e2e_s(), kStep + 4e-3 + 2 * kStep, 1e-12);
  }
}

TEST(ClusterSimTest, PdAddsTheHopsThePullAndTheDecodesFirstStep) {
  DeploymentSpec d;
  d.name = "1p1d";
  d.num_prefill = 1;
  d.num_decode = 1;
  d.prefill = d.decode = d.agg = role(8);
  d.router_hop_s = 0.002;
  TransferModel t{.latency_s = 0.001, .bytes_per_s = 1e9, .kv_bytes_per_token = 1000};
  auto w = fixed_workload({0.0}, 1001, 5);
  auto r = simulate(d, w, StepTimeModel::constant(kStep), t);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  // hop, prefill step, hop, pull of 1000 tokens (1 ms + 1 MB at 1 GB/s), the
  // decode's step over the last prompt token (samples the first token).
  const double pull = 0.001 + 1000 * 1000 / 1e9;
  EXPECT_NEAR(r->records[0].ttft_s(), 0.002 + kStep + 0.002 + pull + kStep, 1e-12);
  EXPECT_NEAR(r->records[0].e2e_s(), r->records[0].ttft_s() + 4 * kStep, 1e-12);
  EXPECT_EQ(r->records[0].output_tokens, 5);
  ASSERT_EQ(r->instances.size(), 2u);
  EXPECT_EQ(r->instances[0].role, "prefill");
  EXPECT_EQ(r->instances[1].role, "decode");
}

TEST(ClusterSimTest, PrefixCachingShortensASharedPrompt) {
  // Prefill tokens cost 1e-5 s: the second request finds the first's blocks.
  const StepTimeModel model(StepTimeModel::Coefficients{kStep, 1e-5, 0, 0, 0});
  auto w = fixed_workload({0.0, 1.0}, 1024, 2, /*shared_prefix=*/true);
  auto r = simulate(agg(1, role(8)), w, model, TransferModel{});
  ASSERT_TRUE(r.is_ok());
  EXPECT_NEAR(r->records[0].ttft_s(), 1024 * 1e-5, 1e-12);
  // All but the last block is cached: 16 tokens computed (the last block),
  // a step at the weights' floor.
  EXPECT_NEAR(r->records[1].ttft_s(), kStep, 1e-12);
}

TEST(ClusterSimTest, MD1QueueWaitMatchesPollaczekKhinchine) {
  // Poisson arrivals, one sequence at a time, constant service S = N steps:
  // mean wait before service = rho * S / (2 (1 - rho)).
  bench::WorkloadOptions o;
  o.input_len = {32, 32};
  o.output_len = {10, 10};
  o.num_requests = 40000;
  const double service = 10 * kStep;
  const double rho = 0.7;
  o.arrival.rate = rho / service;
  o.arrival.seed = 3;
  auto w = bench::make_workload(o);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  auto r = simulate(agg(1, role(1)), *w, StepTimeModel::constant(kStep), TransferModel{});
  ASSERT_TRUE(r.is_ok());
  double wait = 0;
  for (const auto& rec : r->records) wait += rec.ttft_s() - kStep;
  wait /= static_cast<double>(r->records.size());
  const double expected = rho * service / (2 * (1 - rho));
  EXPECT_NEAR(wait, expected, 0.08 * expected) << "simulated " << wait << " s, M/D/1 " << expected << " s";
}

TEST(ClusterSimTest, RecordsAreJudgedByTheBenchsSloCode) {
  auto w = fixed_workload(std::vector<double>(5, 0.0), 64, 10);
  auto r = simulate(agg(1, role(1)), w, StepTimeModel::constant(kStep), TransferModel{});
  ASSERT_TRUE(r.is_ok());
  // TTFTs are 0.01, 0.11, 0.21, 0.31, 0.41 s: p50 0.21 s.
  auto pass = bench::parse_slo("ttft:p50<250ms");
  auto fail = bench::parse_slo("ttft:p50<200ms");
  ASSERT_TRUE(pass.is_ok() && fail.is_ok());
  EXPECT_TRUE(bench::evaluate_slo(*pass, r->records, r->duration_s).sustainable);
  EXPECT_FALSE(bench::evaluate_slo(*fail, r->records, r->duration_s).sustainable);
}

TEST(ClusterSimTest, WarmUpRequestsAreMarkedAsTheBenchMarksThem) {
  auto w = fixed_workload({0.0, 0.1, 0.2, 0.3, 0.4}, 16, 2);
  SimOptions o;
  o.num_warmup = 1;
  o.warmup_s = 0.25;
  auto r = simulate(agg(1, role(8)), w, StepTimeModel::constant(kStep), TransferModel{}, o);
  ASSERT_TRUE(r.is_ok());
  // The first by count, the next two by time: only 0.3 and 0.4 are measured.
  std::vector<bool> warm;
  for (const auto& rec : r->records) warm.push_back(rec.warmup);
  EXPECT_EQ(warm, (std::vector<bool>{true, true, true, false, false}));
}

TEST(ClusterSimTest, PrefixAwareRoutingKeepsAPrefixOnOneInstance) {
  // Requests with one shared first segment go where its hash says (the load
  // skip aside): all on one of four replicas, so the prefix is computed once.
  const StepTimeModel model(StepTimeModel::Coefficients{kStep, 1e-5, 0, 0, 0});
  std::vector<double> arrivals;
  for (int i = 0; i < 8; ++i) arrivals.push_back(i * 1.0);
  auto w = fixed_workload(arrivals, 1024, 2, /*shared_prefix=*/true);
  DeploymentSpec d = agg(4, role(8));
  d.policy = SimPolicy::kPrefixAware;
  auto r = simulate(d, w, model, TransferModel{});
  ASSERT_TRUE(r.is_ok());
  int busy = 0;
  for (const InstanceStats& s : r->instances) busy += s.num_steps > 0 ? 1 : 0;
  EXPECT_EQ(busy, 1);
  for (size_t i = 1; i < r->records.size(); ++i) EXPECT_NEAR(r->records[i].ttft_s(), kStep, 1e-12) << i;
  d.policy = SimPolicy::kRoundRobin;
  auto rr = simulate(d, w, model, TransferModel{});
  ASSERT_TRUE(rr.is_ok());
  for (const InstanceStats& s : rr->instances) EXPECT_GT(s.num_steps, 0);
}

TEST(ClusterSimTest, RefusesWhatCouldNeverRun) {
  auto w = fixed_workload({0.0}, 10000, 10);
  auto r = simulate(agg(1, role(8, 8192, /*blocks=*/64)), w, StepTimeModel::constant(kStep), TransferModel{});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("KV blocks"), std::string::npos);
  DeploymentSpec empty;
  empty.agg = empty.prefill = empty.decode = role(8);
  EXPECT_FALSE(simulate(empty, w, StepTimeModel::constant(kStep), TransferModel{}).is_ok());
  EXPECT_FALSE(parse_sim_policy("random").is_ok());
  EXPECT_TRUE(parse_sim_policy("least_loaded").is_ok());
}

}  // namespace
}  // namespace baton::planner

// The trial engine that `baton bench` and `baton sweep` share: its seed rule,
// its hooks (replay, run, after) and its search, with a fake trial where the
// verdict must be exact and against the SimServer where the load must be real.
#include <gtest/gtest.h>

#include <set>

#include "bench/sim_server.h"
#include "bench/trial_engine.h"
#include "sim_config.h"

namespace baton::bench {
namespace {

using test_util::sim_config;

// A report whose verdict is "sustainable below `capacity`", with no load sent.
RunReport fake_report(double rate, double capacity) {
  RunReport r;
  r.target_rate = rate;
  r.slo.sustainable = rate <= capacity;
  r.slo.first_broken = r.slo.sustainable ? "" : "e2e:p90<1s";
  TargetResult t;
  t.ratio = rate / capacity;
  r.slo.targets.push_back(t);
  return r;
}

TEST(TrialEngineTest, SeedRuleGivesEachTrialFreshPromptsAndTrialZeroTheBaseSeed) {
  EXPECT_EQ(trial_seed(7, 0), 7u);
  EXPECT_NE(trial_seed(7, 1), trial_seed(7, 2));
  EXPECT_NE(trial_seed(7, 1), trial_seed(8, 1));
  TrialEngine engine(sim_config("http://127.0.0.1:1", 10, 4, 2), 7);
  std::set<uint64_t> first_prompt_keys;
  for (size_t k = 0; k < 3; ++k) {
    BenchConfig c = engine.config_for(k);
    EXPECT_EQ(c.workload.seed, trial_seed(7, k));
    EXPECT_EQ(c.workload.arrival.seed, trial_seed(7, k));
    auto w = make_workload(c.workload).value();
    first_prompt_keys.insert(w.requests.front().prompt.front().key);
  }
  EXPECT_EQ(first_prompt_keys.size(), 3u) << "two trials would send the same prompts";
  // The same base seed gives the same series.
  EXPECT_EQ(
      make_workload(TrialEngine(engine.config_for(0), 7).config_for(1).workload).value().requests[0].prompt[0].key,
      make_workload(engine.config_for(1).workload).value().requests[0].prompt[0].key);
}

TEST(TrialEngineTest, SearchRunsEachProbeThroughTheHooksInOrder) {
  const double capacity = 37.3;
  std::vector<size_t> run_indices;
  std::vector<double> after_rates;
  TrialHooks h;
  h.run = [&](const BenchConfig& c, std::optional<double> rate, size_t k) -> Result<RunReport> {
    EXPECT_TRUE(rate.has_value());
    EXPECT_EQ(c.workload.seed, trial_seed(3, k));
    run_indices.push_back(k);
    return fake_report(*rate, capacity);
  };
  h.after = [&](size_t k, std::optional<double> rate, RunReport rep) -> Result<TrialOutcome> {
    EXPECT_EQ(k, after_rates.size());
    after_rates.push_back(*rate);
    return rep.to_trial();
  };
  TrialEngine engine(sim_config("http://127.0.0.1:1", 1, 4, 2), 3, h);
  SearchOptions o;
  o.start_rate = 10;
  o.precision = 0.02;
  o.close_margin = 0;
  auto r = engine.search(o).value();
  EXPECT_TRUE(r.converged) << r.note;
  EXPECT_LE(r.max_passed_rate, capacity);
  EXPECT_GT(r.min_failed_rate, capacity);
  EXPECT_LE((r.min_failed_rate - r.max_passed_rate) / r.max_passed_rate, 0.02);
  EXPECT_EQ(r.broke_first, "e2e:p90<1s");
  ASSERT_EQ(run_indices.size(), r.trials.size());
  for (size_t k = 0; k < run_indices.size(); ++k) {
    EXPECT_EQ(run_indices[k], k);
    EXPECT_EQ(after_rates[k], r.trials[k].rate);
  }
  EXPECT_EQ(after_rates[0], 10.0);
  EXPECT_EQ(after_rates[1], 20.0);  // passed: doubles
  EXPECT_EQ(engine.num_trials(), r.trials.size());
}

TEST(TrialEngineTest, ReplayedTrialsAreNotRunAndAnErrorBeforeATrialEndsTheSearch) {
  size_t num_run = 0;
  TrialHooks h;
  h.before = [&](size_t k, std::optional<double> rate) -> Result<std::optional<TrialOutcome>> {
    if (k < 2) return std::optional<TrialOutcome>(fake_report(*rate, 100).to_trial());  // from disk
    if (k == 4) return aborted("interrupted");
    return std::optional<TrialOutcome>();
  };
  h.run = [&](const BenchConfig&, std::optional<double> rate, size_t k) -> Result<RunReport> {
    EXPECT_GE(k, 2u) << "a replayed trial ran";
    ++num_run;
    return fake_report(*rate, 100);
  };
  TrialEngine engine(sim_config("http://127.0.0.1:1", 1, 4, 2), 0, h);
  SearchOptions o;
  o.start_rate = 10;
  auto r = engine.search(o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAborted);
  EXPECT_EQ(num_run, 2u);  // trials 2 and 3 ran; 0 and 1 were replayed; 4 was refused
  EXPECT_EQ(engine.num_trials(), 4u);
}

TEST(TrialEngineTest, RunRatesDrivesTheSimServerAtEachRateWithItsOwnSeed) {
  SimServerOptions so;
  so.per_token_delay_s = 0.001;
  SimServer server(so);
  ASSERT_TRUE(server.start().is_ok());
  std::vector<RunReport> reports;
  TrialHooks h;
  h.after = [&](size_t, std::optional<double>, RunReport rep) -> Result<TrialOutcome> {
    reports.push_back(rep);
    return rep.to_trial();
  };
  // The configured rate (25/s) is the third trial's: 6 requests in 0.2 s.
  BenchConfig cfg = sim_config(server.url(), 25, 6, 3);
  cfg.slo = parse_slo("e2e:p90<2s").value();
  TrialEngine engine(cfg, 11, h);
  auto trials = engine.run_rates({50, 100}).value();
  ASSERT_EQ(trials.size(), 2u);
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(trials[0].rate, 50.0);
  EXPECT_EQ(trials[1].rate, 100.0);
  EXPECT_TRUE(trials[0].sustainable);
  for (const auto& rep : reports) EXPECT_EQ(rep.metrics.num_ok, 6u);
  EXPECT_EQ(server.num_requests(), 12u);
  // One trial at the configured rate.
  auto one = engine.run_trial().value();
  EXPECT_EQ(one.rate, 25.0);
  EXPECT_EQ(engine.num_trials(), 3u);
}

TEST(TrialEngineTest, ARunThatFailsIsTheTrialsError) {
  TrialHooks h;
  h.run = [](const BenchConfig&, std::optional<double>, size_t) -> Result<RunReport> {
    return unavailable("server gone");
  };
  TrialEngine engine(sim_config("http://127.0.0.1:1", 1, 1, 2), 0, h);
  auto t = engine.run_trial(5);
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().message(), "server gone");
  EXPECT_EQ(engine.num_trials(), 0u);
}

}  // namespace
}  // namespace baton::bench

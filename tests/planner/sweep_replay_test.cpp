// `baton plan --validate` as the sweep ran: the bench's own search over
// simulated trials with the options the sweep recorded, on processes that
// start cold and keep what they met across the cells that shared them; and
// the prefix-aware router's own hash of the prompt as sent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include <xxhash.h>

#include "planner/cluster_sim.h"
#include "planner/plan_validation.h"

namespace baton::planner {
namespace {

namespace fs = std::filesystem;

// A profile with the linears timed alone (what prices a first use).
constexpr const char* kProfile = R"({"device": "Card A", "gpu_memory_bytes": 85899345920, "models": [
  {"model": "llama3.1-8b", "weight_bytes": 16060522496.0,
   "decode": [{"batch": 1, "context": 1024, "step_ms": 4.7, "linears_alone": {"per_linear": [
                 {"linear": "qkv", "m": 1, "us": 19}, {"linear": "o", "m": 1, "us": 16},
                 {"linear": "gate_up", "m": 1, "us": 64}, {"linear": "down", "m": 1, "us": 36},
                 {"linear": "lm_head", "m": 1, "us": 240}]}},
              {"batch": 32, "context": 1024, "step_ms": 6.6}, {"batch": 128, "context": 1024, "step_ms": 10.9},
              {"batch": 256, "context": 1024, "step_ms": 18.1}],
   "prefill": [{"tokens": 512, "time_ms": 13.0, "linear_gemms": {"per_gemm": [{"gemm": "all", "m": 512, "ms": 0.37}]}},
               {"tokens": 2048, "time_ms": 50.9, "linear_gemms": {"per_gemm": [{"gemm": "all", "m": 2048, "ms": 1.31}]}},
               {"tokens": 8192, "time_ms": 241.3,
                "linear_gemms": {"per_gemm": [{"gemm": "all", "m": 8192, "ms": 5.38}]}}]}]})";

class SweepReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("baton_sweep_replay_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "profiles");
    std::ofstream(dir_ / "profiles" / "card-a.json") << kProfile;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // An agg-2gpu cell whose processes started with `started` and whose search
  // finished at `finished`.
  void write_cell(const std::string& workload, const std::string& started, const std::string& finished,
                  const std::string& slo = "ttft:p90<500ms,tpot:p90<40ms", const std::string& file = "") {
    Json spec{{"name", "agg-2gpu"}, {"mode", "agg"}, {"replicas", 2}, {"model", "models/llama3.1-8b"}};
    spec["router_policy"] = "prefix_aware";
    spec["engine_args"] = {{"max-num-seqs", "256"}, {"max-num-batched-tokens", "8192"}};
    Json events = Json::array({started + " started agg-0 (pid 1) on http://127.0.0.1:8100",
                               started + " started agg-1 (pid 2) on http://127.0.0.1:8101"});
    Json doc{{"config",
              {{"sweep",
                {{"deployment", spec},
                 {"workload", workload},
                 {"workload_settings",
                  {{"kind", "random"}, {"input_len", "896:1152"}, {"output_len", 32}, {"num_requests", 200.0}}},
                 {"slo", slo},
                 {"vocab_size", 128256},
                 {"finished_utc", finished},
                 {"supervisor_events", events},
                 {"search",
                  {{"seed", 7},
                   {"start_rate", 20.0},
                   {"precision", 0.2},
                   {"max_trials", 6},
                   {"close_margin", 0.0},
                   {"min_rate", 0.001},
                   {"max_rate", 100000.0}}},
                 {"gpus", Json::array({{{"gpu", 0}, {"name", "Card A"}}, {{"gpu", 1}, {"name", "Card A"}}})}}}}},
             {"search", {{"max_sustainable_rps", 30.0}, {"min_failed_rps", 40.0}}}};
    fs::create_directories(dir_ / "results" / "agg-2gpu");
    std::ofstream(dir_ / "results" / "agg-2gpu" / ((file.empty() ? workload : file) + ".json")) << doc.dump();
  }

  Result<Validation> validate(bool as_swept = true) const {
    ValidationOptions o;
    o.results_dir = dir_.string();
    o.as_swept = as_swept;
    return validate_results(o);
  }
  fs::path dir_;
};

TEST_F(SweepReplayTest, RunsTheSweepsOwnSearchOnTheSimulator) {
  write_cell("short", "T0", "T1");
  auto v = validate();
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  const ValidationCell& c = v->cells[0];
  ASSERT_TRUE(c.as_swept);
  ASSERT_GE(c.searched.size(), 2u);
  EXPECT_LE(c.searched.size(), 6u);            // the recorded max_trials
  EXPECT_DOUBLE_EQ(c.searched[0].rate, 20.0);  // from the recorded start rate
  double passed = 0, failed = 1e300;
  for (const bench::TrialOutcome& t : c.searched) {
    if (t.sustainable) passed = std::max(passed, t.rate);
    if (!t.sustainable) failed = std::min(failed, t.rate);
  }
  EXPECT_DOUBLE_EQ(c.predicted_rps, passed);
  if (failed < 1e300) EXPECT_LE((failed - passed) / passed, 0.2 + 1e-9);  // the recorded precision
  EXPECT_GT(c.first_use_s, 0);                                            // cold processes paid their first uses
  EXPECT_GT(c.predicted_warm_rps, 0);
  EXPECT_EQ(c.to_json()["predicted_as"], "swept");
  // The band: the same search with every step longer and shorter by the fit's RMS error.
  EXPECT_LE(c.predicted_low_rps, c.predicted_rps);
  EXPECT_GE(c.predicted_high_rps, c.predicted_rps);
  EXPECT_LT(c.predicted_low_rps, c.predicted_high_rps);
  EXPECT_EQ(c.measured_in_band, c.predicted_low_rps <= 30.0 && 30.0 <= c.predicted_high_rps);
  EXPECT_EQ(v->num_in_band, c.measured_in_band ? 1u : 0u);
  // In steady state the planner's own search is judged.
  auto warm = validate(false);
  ASSERT_TRUE(warm.is_ok());
  EXPECT_FALSE(warm->cells[0].as_swept);
  EXPECT_DOUBLE_EQ(warm->cells[0].predicted_rps, warm->cells[0].predicted_warm_rps);
  EXPECT_TRUE(warm->cells[0].searched.empty());
  EXPECT_LE(warm->cells[0].predicted_low_rps, warm->cells[0].predicted_rps);
  EXPECT_GE(warm->cells[0].predicted_high_rps, warm->cells[0].predicted_rps);
}

TEST_F(SweepReplayTest, CellsOnTheSameProcessesCarryWhatTheyMet) {
  // An SLO every trial meets: every search takes the same path (doubling
  // from the start rate for its 6 trials), whatever its processes met.
  const std::string loose = "ttft:p90<1000s";
  write_cell("short", "T0", "T1", loose, "a");
  auto alone = validate();
  ASSERT_TRUE(alone.is_ok()) << alone.status().to_string();
  ASSERT_EQ(alone->cells[0].searched.size(), 6u);
  const double cold = alone->cells[0].first_use_s;
  ASSERT_GT(cold, 0);
  // The same trials again, after it on the same processes: the shapes were met.
  write_cell("short", "T0", "T2", loose, "b");
  auto shared = validate();
  ASSERT_TRUE(shared.is_ok()) << shared.status().to_string();
  ASSERT_EQ(shared->cells.size(), 2u);
  // (Warm, its steps batch a little differently: a few shapes are new.)
  const double first = std::max(shared->cells[0].first_use_s, shared->cells[1].first_use_s);
  const double second = std::min(shared->cells[0].first_use_s, shared->cells[1].first_use_s);
  EXPECT_NEAR(first, cold, 1e-12);
  EXPECT_LT(second, 0.2 * cold);
  // On fresh processes (another start), it pays them again.
  write_cell("short", "T5", "T6", loose, "b");
  auto fresh = validate();
  ASSERT_TRUE(fresh.is_ok());
  for (const ValidationCell& c : fresh->cells) EXPECT_NEAR(c.first_use_s, cold, 1e-12);
}

TEST_F(SweepReplayTest, AProfileWhoseLinearTimingsAreBrokenSkipsTheCellNamingIt) {
  std::string profile = kProfile;
  const std::string good = "\"ms\": 0.37";
  profile.replace(profile.find(good), good.size(), "\"ms\": -0.37");
  std::ofstream(dir_ / "profiles" / "card-a.json") << profile;
  write_cell("short", "T0", "T1");
  auto v = validate();
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  ASSERT_FALSE(v->cells[0].predicted());
  EXPECT_NE(v->cells[0].skipped.find("linear_gemms"), std::string::npos) << v->cells[0].skipped;
}

TEST(RouterHashTest, TheKeyIsThePromptAsSentAndTheScoreTheRoutersRendezvous) {
  const std::vector<bench::Segment> prompt{{42, 300}};
  const std::vector<int32_t> ids = bench::materialize_ids(prompt, 128256);
  std::string sent = "[";
  for (size_t i = 0; i < ids.size(); ++i) sent += (i > 0 ? "," : "") + std::to_string(ids[i]);
  sent += "]";
  const std::string key = routing_key(prompt, 128256, bench::PromptFormat::kTokenIds);
  EXPECT_EQ(key, sent.substr(0, 256));
  // A short prompt is whole, its bracket closed.
  const std::vector<bench::Segment> short_prompt{{42, 3}};
  const std::vector<int32_t> three = bench::materialize_ids(short_prompt, 128256);
  EXPECT_EQ(routing_key(short_prompt, 128256, bench::PromptFormat::kTokenIds),
            "[" + std::to_string(three[0]) + "," + std::to_string(three[1]) + "," + std::to_string(three[2]) + "]");
  EXPECT_EQ(routing_key(prompt, 128256, bench::PromptFormat::kText), bench::materialize_text(prompt).substr(0, 256));
  // router/routing_policy.cpp: XXH3(url, seed = XXH3(key)).
  const std::string url = "http://127.0.0.1:8100";
  EXPECT_EQ(rendezvous_score(routing_key_hash(key), url),
            XXH3_64bits_withSeed(url.data(), url.size(), XXH3_64bits(key.data(), key.size())));
}

TEST(RouterHashTest, ThePrefixAwareSimulationPicksTheHighestScore) {
  // One request at a time on two replicas: each goes where the router's
  // score is highest for its prompt (the load skip never applies).
  bench::Workload w;
  w.kind = "random";
  const std::vector<std::string> urls{"http://127.0.0.1:8100", "http://127.0.0.1:8101"};
  std::vector<int> expected_steps(2, 0);
  for (int i = 0; i < 8; ++i) {
    bench::RequestSpec r;
    r.arrival_s = i;  // far apart: each alone
    r.prompt = {{static_cast<uint64_t>(1000 + i), 64}};
    r.prompt_tokens = 64;
    r.output_tokens = 1;
    w.requests.push_back(r);
    const uint64_t h = routing_key_hash(routing_key(r.prompt, 128256, bench::PromptFormat::kTokenIds));
    ++expected_steps[rendezvous_score(h, urls[0]) > rendezvous_score(h, urls[1]) ? 0 : 1];
  }
  DeploymentSpec d;
  d.name = "agg";
  d.num_agg = 2;
  d.agg.scheduler.max_num_seqs = 8;
  d.agg.scheduler.max_num_batched_tokens = 8192;
  d.agg.num_kv_blocks = 1024;
  d.prefill = d.decode = d.agg;
  d.policy = SimPolicy::kPrefixAware;
  d.front_urls = urls;
  SimOptions o;
  o.vocab_size = 128256;
  auto r = simulate(d, w, StepTimeModel::constant(0.01), TransferModel{}, o);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  // One step per request (one output token): the steps say where each went.
  EXPECT_EQ(r->instances[0].num_steps, expected_steps[0]);
  EXPECT_EQ(r->instances[1].num_steps, expected_steps[1]);
  EXPECT_GT(expected_steps[0] * expected_steps[1], 0);  // the 8 prompts do not all hash to one
}

}  // namespace
}  // namespace baton::planner

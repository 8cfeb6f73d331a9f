// `baton plan --validate`: every cell of a recorded sweep predicted with its
// card's profile and set against what it measured.
#include "planner/plan_validation.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "bench/trial_engine.h"
#include "bench/workload.h"
#include "model/presets.h"

namespace baton::planner {
namespace {

namespace fs = std::filesystem;

// A profile of the shape `baton profile` writes (one model, a few steps).
constexpr const char* kProfile = R"({"device": "Card A", "gpu_memory_bytes": 85899345920, "models": [
  {"model": "llama3.1-8b", "weight_bytes": 16060522496.0,
   "decode": [{"batch": 1, "context": 1024, "step_ms": 4.7}, {"batch": 32, "context": 1024, "step_ms": 6.6},
              {"batch": 128, "context": 1024, "step_ms": 10.9}, {"batch": 256, "context": 1024, "step_ms": 18.1}],
   "prefill": [{"tokens": 512, "time_ms": 13.0}, {"tokens": 2048, "time_ms": 50.9},
               {"tokens": 8192, "time_ms": 241.3}]}]})";

class PlanValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("baton_plan_validation_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "profiles");
    std::ofstream(dir_ / "profiles" / "card-a.json") << kProfile;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // One result document as `baton sweep` writes it (the fields validation reads).
  void write_cell(const std::string& deployment, const std::string& card, double measured, double failed) {
    Json spec = deployment == "agg-2gpu"
                    ? Json{{"name", deployment}, {"mode", "agg"}, {"replicas", 2}}
                    : Json{{"name", deployment},
                           {"mode", "pd"},
                           {"kv_transport", "cuda_ipc"},
                           {"prefill", {{"replicas", 1}, {"engine_args", Json::object()}}},
                           {"decode", {{"replicas", 1}, {"engine_args", {{"max-num-batched-tokens", "2048"}}}}}};
    spec["model"] = "models/llama3.1-8b";
    spec["router_policy"] = "round_robin";
    spec["engine_args"] = {{"max-num-seqs", "256"}, {"max-num-batched-tokens", "8192"}};
    Json gpus = Json::array();
    for (int g = 0; g < 2; ++g) gpus.push_back({{"gpu", g}, {"name", card}});
    Json doc{
        {"config",
         {{"sweep",
           {{"deployment", spec},
            {"workload", "short"},
            {"workload_settings",
             {{"kind", "random"}, {"input_len", 1024}, {"output_len", 32}, {"num_requests", 150.0}}},
            {"slo", "ttft:p90<500ms,tpot:p90<40ms"},
            {"vocab_size", 128256},
            {"gpus", gpus}}}}},
        {"search", {{"max_sustainable_rps", measured}, {"min_failed_rps", failed}, {"broke_first", "ttft:p90<500ms"}}}};
    fs::create_directories(dir_ / "results" / deployment);
    std::ofstream(dir_ / "results" / deployment / "short.json") << doc.dump();
  }

  ValidationOptions options() const {
    ValidationOptions o;
    o.results_dir = dir_.string();
    return o;
  }
  fs::path dir_;
};

TEST_F(PlanValidationTest, PredictsEveryCellOfAProfiledCardAndMeasuresTheError) {
  write_cell("agg-2gpu", "Card A", 10, 12);
  write_cell("pd-1p1d", "Card A", 5, 6);
  auto first = validate_results(options());
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  ASSERT_EQ(first->cells.size(), 2u);
  ASSERT_EQ(first->num_predicted, 2u);
  const ValidationCell& agg = first->cells[0];
  EXPECT_EQ(agg.deployment, "agg-2gpu");
  EXPECT_EQ(agg.card, "Card A");
  ASSERT_GT(agg.predicted_rps, 0);
  EXPECT_NEAR(agg.rel_error, (agg.predicted_rps - 10) / 10, 1e-12);
  EXPECT_FALSE(agg.predicted_broke_first.empty());

  // Recorded as measured exactly what was predicted: no error, and the
  // recommendation is the measured best.
  write_cell("agg-2gpu", "Card A", first->cells[0].predicted_rps, 0);
  write_cell("pd-1p1d", "Card A", first->cells[1].predicted_rps, 0);
  auto exact = validate_results(options());
  ASSERT_TRUE(exact.is_ok()) << exact.status().to_string();
  EXPECT_NEAR(exact->median_abs_rel_error, 0, 1e-12);
  EXPECT_NEAR(exact->max_abs_rel_error, 0, 1e-12);
  ASSERT_EQ(exact->workloads.size(), 1u);
  EXPECT_EQ(exact->workloads[0].predicted_best, exact->workloads[0].measured_best);
  EXPECT_TRUE(exact->workloads[0].within_5pct);

  // Half of what was predicted: +100% on each cell.
  write_cell("agg-2gpu", "Card A", first->cells[0].predicted_rps / 2, 0);
  write_cell("pd-1p1d", "Card A", first->cells[1].predicted_rps / 2, 0);
  auto doubled = validate_results(options());
  ASSERT_TRUE(doubled.is_ok());
  EXPECT_NEAR(doubled->median_abs_rel_error, 1.0, 1e-9);
  const Json j = doubled->to_json();
  EXPECT_EQ(j["cells"].size(), 2u);
  EXPECT_TRUE(j["cells"][0].contains("predicted_rps"));
  EXPECT_TRUE(j["cells"][0].contains("measured_rps"));
  EXPECT_NEAR(j["max_abs_rel_error"].get<double>(), 1.0, 1e-9);
}

TEST_F(PlanValidationTest, ARoleEngineArgumentFromTheSpecMovesThePrediction) {
  // A role's engine_args override the deployment's: a decode instance whose
  // memory share leaves KV for two requests (0.191 of 80 GiB, less 16 GB of
  // weights: 164 blocks of 16 tokens, 66 a request) predicts less.
  write_cell("pd-1p1d", "Card A", 5, 6);
  auto base = validate_results(options());
  ASSERT_TRUE(base.is_ok()) << base.status().to_string();
  Json doc = read_json_file((dir_ / "results" / "pd-1p1d" / "short.json").string()).value();
  doc["config"]["sweep"]["deployment"]["decode"]["engine_args"]["gpu-memory-utilization"] = "0.191";
  std::ofstream(dir_ / "results" / "pd-1p1d" / "short.json") << doc.dump();
  auto small = validate_results(options());
  ASSERT_TRUE(small.is_ok()) << small.status().to_string();
  EXPECT_LT(small->cells[0].predicted_rps, 0.5 * base->cells[0].predicted_rps);
}

TEST_F(PlanValidationTest, ReplaysEachMeasuredTrialWithTheWorkloadItSent) {
  // Two recorded trials (runs[]): each is simulated at its rate with the
  // seed the sweep gave it (trial_seed(series_seed(seed, workload), k)), so
  // the simulated requests are the ones the trial sent, arrival for arrival.
  write_cell("agg-2gpu", "Card A", 10, 12);
  const fs::path file = dir_ / "results" / "agg-2gpu" / "short.json";
  Json doc = read_json_file(file.string()).value();
  doc["config"]["sweep"]["search"] = {{"seed", 7}};
  auto run = [](double rate, bool ok, double ttft_p90_ms) {
    return Json{
        {"target_rate_rps", rate},
        {"slo", {{"sustainable", ok}}},
        {"metrics", {{"ttft_ms", {{"p50", 30.0}, {"p90", ttft_p90_ms}}}, {"tpot_ms", {{"p50", 6.0}, {"p90", 7.0}}}}}};
  };
  doc["runs"] = Json::array({run(4, true, 45.0), run(16, false, 900.0)});
  std::ofstream(file) << doc.dump();
  ValidationOptions o = options();
  o.compare_trials = true;
  o.records_dir = (dir_ / "sim").string();
  auto v = validate_results(o);
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  const ValidationCell& cell = v->cells[0];
  ASSERT_EQ(cell.trials.size(), 2u);
  EXPECT_DOUBLE_EQ(cell.trials[1].rate, 16);
  EXPECT_DOUBLE_EQ(cell.trials[1].measured.ttft_p90_ms, 900.0);
  EXPECT_FALSE(cell.trials[1].measured.sustainable);
  EXPECT_GT(cell.trials[0].simulated.ttft_p50_ms, 0);
  EXPECT_GT(cell.trials[0].simulated.tpot_p90_ms, 0);
  EXPECT_TRUE(cell.to_json().contains("trials"));
  EXPECT_EQ(v->num_trials, 2u);
  size_t agree = 0;
  for (const TrialComparison& t : cell.trials) agree += t.measured.sustainable == t.simulated.sustainable ? 1 : 0;
  EXPECT_EQ(v->num_trial_verdicts_agree, agree);
  EXPECT_EQ(v->to_json()["num_trial_verdicts_agree"], agree);

  bench::WorkloadOptions w;
  w.kind = "random";
  w.input_len = {1024, 1024};
  w.output_len = {32, 32};
  w.num_requests = 150;
  w.vocab_size = 128256;
  w.arrival.rate = 16;
  w.seed = w.arrival.seed = bench::trial_seed(bench::series_seed(7, "short"), 1);
  auto sent = bench::make_workload(w);
  ASSERT_TRUE(sent.is_ok()) << sent.status().to_string();
  std::ifstream records(dir_ / "sim" / "agg-2gpu" / "short.sim.requests.jsonl");
  size_t num_second = 0;
  for (std::string line; std::getline(records, line);) {
    const Json r = Json::parse(line);
    if (r["trial"].get<int>() != 1) continue;
    const size_t i = r["index"].get<size_t>();
    ASSERT_LT(i, sent->requests.size());
    EXPECT_NEAR(r["send_ms"].get<double>(), sent->requests[i].arrival_s * 1e3, 1e-3) << i;
    ++num_second;
  }
  EXPECT_EQ(num_second, sent->requests.size());
}

TEST_F(PlanValidationTest, ACellOfAnUnprofiledCardIsSkippedAndSaysWhy) {
  write_cell("agg-2gpu", "Card A", 10, 12);
  write_cell("pd-1p1d", "Card B", 5, 6);
  auto v = validate_results(options());
  ASSERT_TRUE(v.is_ok()) << v.status().to_string();
  ASSERT_EQ(v->cells.size(), 2u);
  EXPECT_EQ(v->num_predicted, 1u);
  EXPECT_TRUE(v->cells[0].predicted());
  EXPECT_FALSE(v->cells[1].predicted());
  EXPECT_NE(v->cells[1].skipped.find("Card B"), std::string::npos) << v->cells[1].skipped;
  EXPECT_TRUE(v->workloads.empty());  // a workload with an unpredicted cell has no verdict
}

TEST_F(PlanValidationTest, RefusesWhatIsNotASweepClearly) {
  ValidationOptions nowhere = options();
  nowhere.results_dir = (dir_ / "nowhere").string();
  auto none = validate_results(nowhere);
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("results/"), std::string::npos);
  fs::create_directories(dir_ / "results" / "agg-2gpu");
  std::ofstream(dir_ / "results" / "agg-2gpu" / "short.json") << R"({"label": "not a sweep"})";
  auto bad = validate_results(options());
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("not a sweep result"), std::string::npos) << bad.status().to_string();
  // Fields of the wrong type are refused naming the file, not thrown out of the process.
  for (const char* text :
       {R"({"config": {"sweep": {"deployment": {"model": 7}, "workload_settings": {}, "gpus": [{"name": "Card A"}]}},
            "search": {}})",
        R"({"config": {"sweep": {"deployment": {}, "workload_settings": {}}}, "search": {"max_sustainable_rps": "x"}})",
        R"({"config": {"sweep": "x"}, "search": {}})"}) {
    std::ofstream(dir_ / "results" / "agg-2gpu" / "short.json") << text;
    auto typed = validate_results(options());
    ASSERT_FALSE(typed.is_ok()) << text;
    EXPECT_NE(typed.status().message().find("short.json"), std::string::npos) << typed.status().to_string();
  }
  // Two profiles of one card are ambiguous.
  std::ofstream(dir_ / "profiles" / "card-a-again.json") << kProfile;
  write_cell("agg-2gpu", "Card A", 10, 12);
  auto twice = validate_results(options());
  ASSERT_FALSE(twice.is_ok());
  EXPECT_NE(twice.status().message().find("two profiles"), std::string::npos) << twice.status().to_string();
}

TEST(KvBytesPerTokenTest, CountsKAndVPerHeadOrOneLatentRow) {
  const ModelConfig llama = find_model_preset("llama3.1-8b")->config;
  EXPECT_EQ(kv_bytes_per_token(llama), 2 * 32 * 8 * 128 * 2);  // 128 KiB
  const ModelConfig dsv3 = find_model_preset("deepseek-v3")->config;
  EXPECT_EQ(kv_bytes_per_token(dsv3), (512 + 64) * 61 * 2);  // ~70 KB
}

}  // namespace
}  // namespace baton::planner

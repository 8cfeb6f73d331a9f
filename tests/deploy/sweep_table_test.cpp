// The sweep's comparison table, built from result files on disk (no
// deployment runs): ratios, the best deployment, what broke first, results
// of other cards, unfinished searches, rate units.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/json.h"
#include "deploy/experiment.h"
#include "deploy/sweep.h"
#include "deploy/sweep_report.h"
#include "deploy/test_dir.h"

namespace baton::deploy {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& tag) { return fresh_test_dir("baton-sweep-table-test", tag); }

// A minimal result document as `baton bench` writes it.
// `card` (optional): the name of the 2 GPUs it ran on.
void write_result(const fs::path& out, const std::string& dep, const std::string& workload, Json max_rps,
                  Json min_failed, const std::string& broke, const std::string& card = "") {
  Json doc{{"format", "baton-bench-result/1"},
           {"label", dep},
           {"runs", Json::array()},
           {"slo", Json::array()},
           {"max_sustainable_rps", max_rps},
           {"search",
            {{"max_sustainable_rps", max_rps.is_null() ? Json(0) : max_rps},
             {"min_failed_rps", min_failed},
             {"broke_first", broke},
             {"converged", !min_failed.is_null() && !max_rps.is_null()},
             {"num_trials", 5}}}};
  if (!card.empty()) {
    doc["config"]["sweep"] = {
        {"finished_utc", "2026-11-27T06:03:11Z"},
        {"gpus", {{{"instance", "a"}, {"gpu", 0}, {"name", card}}, {{"instance", "b"}, {"gpu", 1}, {"name", card}}}}};
  }
  fs::create_directories(out / "results" / dep);
  std::ofstream(result_path(out.string(), dep, workload)) << doc.dump();
}

TEST(SweepTableTest, RatiosBestBrokeFirstAndMissingFromResultsOnDisk) {
  auto e = Experiment::parse_yaml(R"(
name: t
baseline: agg
deployments:
  - {name: agg, spec: {mode: agg, replicas: 2}}
  - {name: pd, spec: {mode: pd, prefill: 1, decode: 1}}
  - {name: pd-tcp, spec: {mode: pd, prefill: 1, decode: 1, kv_transport: tcp}, workloads: [a]}
workloads:
  - {name: a, slo: "ttft:p90<1s"}
  - {name: b, slo: "tpot:p90<40ms"}
comparisons: [{name: tcp-vs-shm, deployment: pd-tcp, against: pd}]
)");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  fs::path out = fresh_dir("table");
  write_result(out, "agg", "a", 4.0, 4.4, "ttft:p90<1s");
  write_result(out, "pd", "a", 6.0, 6.5, "ttft:p90<1s");
  write_result(out, "pd-tcp", "a", 1.5, 1.7, "tpot:p90<40ms");
  write_result(out, "agg", "b", nullptr, 0.5, "tpot:p90<40ms");  // nothing passed
  // pd/b not run yet
  auto t = build_sweep_table(*e, out.string());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  ASSERT_EQ(t->rows.size(), 2u);
  const auto& a = t->rows[0];
  EXPECT_EQ(a.best, "pd");
  ASSERT_TRUE(a.cells[1].ratio.has_value());
  EXPECT_DOUBLE_EQ(*a.cells[1].ratio, 1.5);
  EXPECT_DOUBLE_EQ(*a.cells[2].ratio, 1.5 / 4.0);
  EXPECT_EQ(a.cells[2].broke_first, "tpot:p90<40ms");
  const auto& b = t->rows[1];
  EXPECT_FALSE(b.cells[0].max_rps.has_value());
  EXPECT_FALSE(b.cells[1].present);
  EXPECT_FALSE(b.cells[2].applies);
  EXPECT_EQ(b.best, "");
  EXPECT_EQ(t->num_missing, 1u);
  ASSERT_EQ(t->comparisons.size(), 1u);
  EXPECT_DOUBLE_EQ(*t->comparisons[0].ratio, 1.5 / 6.0);
  std::string md = t->to_markdown();
  EXPECT_NE(md.find("| a | `ttft:p90<1s` | unrecorded | 4 (1.00x) | 6 (1.50x) | 1.5 (0.38x) | pd |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| b | `tpot:p90<40ms` | unrecorded | < 0.5 | missing | - | none |"), std::string::npos) << md;
  EXPECT_NE(md.find("tcp-vs-shm (`pd-tcp` / `pd`) | a | 0.25x"), std::string::npos) << md;
  EXPECT_NE(md.find("ttft:p90<1s at 4.4 req/s"), std::string::npos) << md;
  Json j = t->to_json();
  EXPECT_EQ(j["workloads"][0]["deployments"]["pd"]["ratio_to_baseline"], 1.5);
  EXPECT_TRUE(j["workloads"][1]["best"].is_null());
  EXPECT_FALSE(j["workloads"][1]["deployments"].contains("pd-tcp"));
  // A corrupt result file is an error naming it, not a crash.
  std::ofstream(result_path(out.string(), "pd", "b")) << "{not json";
  auto bad = build_sweep_table(*e, out.string());
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("b.json"), std::string::npos) << bad.status().message();
  fs::remove_all(out);
}

// Results of other cards are shown with their cards but never compared; a
// search not finished shows its trials so far; a comparison across cards has
// no ratio and says why.
TEST(SweepTableTest, CardsPartialSearchesAndNoRatiosAcrossCards) {
  auto e = Experiment::parse_yaml(R"(
name: t
baseline: agg
deployments:
  - {name: agg, spec: {mode: agg, replicas: 2}}
  - {name: pd, spec: {mode: pd, prefill: 1, decode: 1}}
  - {name: pd-tcp, spec: {mode: pd, prefill: 1, decode: 1, kv_transport: tcp}}
workloads:
  - {name: a, slo: "ttft:p90<1s"}
  - {name: b, slo: "tpot:p90<40ms"}
comparisons: [{name: tcp-vs-ipc, deployment: pd-tcp, against: pd}]
)");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  fs::path out = fresh_dir("cards");
  write_result(out, "agg", "a", 4.0, 4.4, "ttft:p90<1s", "H200");
  write_result(out, "pd", "a", 6.0, 6.5, "ttft:p90<1s", "H200");
  write_result(out, "pd-tcp", "a", 5.0, 5.5, "ttft:p90<1s", "H100");  // another host's cards
  write_result(out, "agg", "b", 3.0, 4.0, "tpot:p90<40ms", "H100");
  write_result(out, "pd", "b", 2.0, 3.0, "tpot:p90<40ms", "H100");
  // pd-tcp/b: a search cut short after 3 trials.
  const Json gpus = {{{"instance", "a"}, {"gpu", 0}, {"name", "H100"}},
                     {{"instance", "b"}, {"gpu", 1}, {"name", "H100"}}};
  {
    std::ofstream f(partial_path(out.string(), "pd-tcp", "b"));
    for (auto [rate, ok] : {std::pair{4.0, false}, std::pair{2.0, true}, std::pair{3.0, true}}) {
      f << Json{{"rate", rate},
                {"sustainable", ok},
                {"first_broken", ok ? "" : "ttft:p90<1s"},
                {"run", Json::object()},
                {"gpus", gpus}}
               .dump()
        << "\n";
    }
  }
  auto t = build_sweep_table(*e, out.string());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  const auto& a = t->rows[0];
  EXPECT_EQ(a.cards, "mixed: 2x H100; 2x H200");
  EXPECT_EQ(a.measured, "2026-11-27");
  EXPECT_DOUBLE_EQ(*a.cells[1].ratio, 1.5);
  EXPECT_FALSE(a.cells[2].ratio.has_value());
  EXPECT_TRUE(a.cells[2].other_cards);
  EXPECT_EQ(a.best, "pd");  // pd-tcp's 5 is on other cards: not ranked
  const auto& b = t->rows[1];
  EXPECT_EQ(b.cards, "2x H100");
  EXPECT_TRUE(b.cells[2].partial);
  EXPECT_FALSE(b.cells[2].present);
  EXPECT_EQ(*b.cells[2].max_rps, 3.0);
  EXPECT_EQ(*b.cells[2].min_failed_rps, 4.0);
  EXPECT_EQ(b.cells[2].broke_first, "ttft:p90<1s");
  EXPECT_FALSE(b.cells[2].ratio.has_value());
  EXPECT_EQ(b.best, "agg");  // a partial search is not ranked
  EXPECT_EQ(t->num_missing, 1u);
  ASSERT_EQ(t->comparisons.size(), 2u);
  EXPECT_FALSE(t->comparisons[0].ratio.has_value());
  EXPECT_EQ(t->comparisons[0].note, "different cards: 2x H100 vs 2x H200");
  EXPECT_EQ(t->comparisons[1].note, "not run yet");
  std::string md = t->to_markdown();
  EXPECT_NE(md.find("| a | `ttft:p90<1s` | mixed: 2x H100; 2x H200 (2026-11-27) | 4 (1.00x) | 6 (1.50x) | 5 (other "
                    "cards) | pd |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| b | `tpot:p90<40ms` | 2x H100 (2026-11-27) | 3 (1.00x) | 2 (0.67x) | partial: 3 (< 4) | agg |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("n/a (different cards: 2x H100 vs 2x H200)"), std::string::npos) << md;
  Json j = t->to_json();
  EXPECT_EQ(j["workloads"][0]["cards"], "mixed: 2x H100; 2x H200");
  EXPECT_EQ(j["workloads"][1]["deployments"]["pd-tcp"]["partial"], true);
  EXPECT_EQ(j["comparisons"][0]["note"], "different cards: 2x H100 vs 2x H200");
  // A corrupt partial file is an error naming it.
  std::ofstream(partial_path(out.string(), "pd-tcp", "b")) << "{\"rate\": 1}\n";
  auto bad = build_sweep_table(*e, out.string());
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("b.partial.jsonl"), std::string::npos) << bad.status().message();
  fs::remove_all(out);
}

TEST(SweepTableTest, MultiTurnRowsSaySessionsPerSecond) {
  auto e = Experiment::parse_yaml(R"(
name: t
deployments:
  - {name: agg, spec: {mode: agg, replicas: 2}}
workloads:
  - {name: chat, kind: multiturn, turns: 3, input_len: 32, output_len: 8, slo: "ttft:p90<1s"}
  - {name: one, slo: "ttft:p90<1s"}
)");
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  fs::path out = fresh_dir("units");
  write_result(out, "agg", "chat", 4.0, 5.0, "ttft:p90<1s");
  write_result(out, "agg", "one", 4.0, 5.0, "ttft:p90<1s");
  auto t = build_sweep_table(*e, out.string());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(t->rows[0].rate_unit, "sessions/s");
  EXPECT_EQ(t->rows[1].rate_unit, "req/s");
  std::string md = t->to_markdown();
  EXPECT_NE(md.find("| chat (sessions/s) | `ttft:p90<1s` |"), std::string::npos) << md;
  EXPECT_NE(md.find("ttft:p90<1s at 5 sessions/s"), std::string::npos) << md;
  EXPECT_NE(md.find("| one | `ttft:p90<1s` |"), std::string::npos) << md;
  EXPECT_NE(md.find("ttft:p90<1s at 5 req/s"), std::string::npos) << md;
  fs::remove_all(out);
}

TEST(SweepTableTest, GpuCardsCountsNamesWhateverTheOrder) {
  EXPECT_EQ(gpu_cards(Json::array()), "");
  EXPECT_EQ(gpu_cards(Json("nonsense")), "");
  Json g = {{{"name", "B"}}, {{"name", "A"}}, {{"name", "B"}}, {{"gpu", 3}}};
  EXPECT_EQ(gpu_cards(g), "1x A + 2x B");
}

}  // namespace
}  // namespace baton::deploy

// The one schema of the workload options: its rules (trace without a kind,
// duration without a count), its ranges and errors named the way the user
// wrote them, and docs/bench.md listing every option it defines.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "bench/workload_schema.h"

namespace baton::bench {
namespace {

TEST(WorkloadSchemaTest, DefaultsAreOneSetWithTwoHundredRequests) {
  WorkloadSettings s;
  auto w = to_workload_options(s, OptionNames::kKey).value();
  EXPECT_EQ(w.kind, "random");
  EXPECT_EQ(w.num_requests, 200u);
  EXPECT_EQ(w.input_len.min, 512);
  EXPECT_EQ(w.output_len.max, 128);
  EXPECT_EQ(w.arrival.kind, ArrivalKind::kPoisson);
  EXPECT_EQ(w.prompt_format, PromptFormat::kTokenIds);
}

TEST(WorkloadSchemaTest, KeysAndFlagsAreUniqueAndSpelledAsBefore) {
  std::set<std::string> keys, flags;
  for (const auto& o : workload_options()) {
    EXPECT_TRUE(keys.insert(o.key).second) << o.key;
    EXPECT_TRUE(flags.insert(o.flag).second) << o.flag;
  }
  for (const char* k : {"kind", "input_len", "num_requests", "duration_s", "warmup_s", "max_concurrency", "seed", "slo",
                        "trace", "prompt_format", "vocab_size"}) {
    EXPECT_TRUE(keys.count(k)) << k;
  }
  for (const char* f : {"--workload", "--input-len", "--num-requests", "--duration-s", "--warmup-s", "--seed", "--slo",
                        "--trace", "--prompt-format", "--vocab-size"}) {
    EXPECT_TRUE(flags.count(f)) << f;
  }
}

TEST(WorkloadSchemaTest, TraceWithoutKindIsATraceAndDurationWithoutCountSendsForThatLong) {
  WorkloadSettings s;
  s.trace = "t.csv";
  EXPECT_EQ(to_workload_options(s, OptionNames::kKey)->kind, "trace");
  s.given.insert("kind");  // an explicit kind wins
  EXPECT_EQ(to_workload_options(s, OptionNames::kKey)->kind, "random");

  WorkloadSettings d;
  d.duration_s = 30;
  EXPECT_EQ(to_workload_options(d, OptionNames::kFlag)->num_requests, 0u);
  d.num_requests = 50;
  d.given.insert("num_requests");
  EXPECT_EQ(to_workload_options(d, OptionNames::kFlag)->num_requests, 50u);
}

TEST(WorkloadSchemaTest, SeedSeedsArrivalsAndPrompts) {
  WorkloadSettings s;
  s.seed = 42;
  auto w = to_workload_options(s, OptionNames::kKey).value();
  EXPECT_EQ(w.seed, 42u);
  EXPECT_EQ(w.arrival.seed, 42u);
}

TEST(WorkloadSchemaTest, ErrorsNameTheOptionAsTheUserWroteIt) {
  WorkloadSettings s;
  s.warmup_s = -1;
  auto flag = to_workload_options(s, OptionNames::kFlag);
  ASSERT_FALSE(flag.is_ok());
  EXPECT_NE(flag.status().message().find("--warmup-s"), std::string::npos) << flag.status().message();
  auto key = to_workload_options(s, OptionNames::kKey);
  ASSERT_FALSE(key.is_ok());
  EXPECT_NE(key.status().message().find("warmup_s"), std::string::npos) << key.status().message();
  EXPECT_EQ(key.status().message().find("--"), std::string::npos) << key.status().message();

  WorkloadSettings p;
  p.prompt_format = "words";
  auto bad = to_workload_options(p, OptionNames::kKey);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("prompt_format"), std::string::npos);
  WorkloadSettings len;
  len.input_len = "9:3";
  auto range = to_workload_options(len, OptionNames::kFlag);
  ASSERT_FALSE(range.is_ok());
  EXPECT_NE(range.status().message().find("--input-len"), std::string::npos);
  WorkloadSettings at;
  at.attainment = 1.5;
  EXPECT_FALSE(settings_slo(at, OptionNames::kKey).is_ok());
}

TEST(WorkloadSchemaTest, DocsListEveryOptionWithItsKeyAndFlag) {
  std::ifstream f(std::string(BATON_TEST_DATA) + "/../../docs/bench.md");
  ASSERT_TRUE(f.good());
  std::stringstream text;
  text << f.rdbuf();
  for (const auto& o : workload_options()) {
    const std::string row = std::string("| `") + o.key + "` | `" + o.flag + "` |";
    EXPECT_NE(text.str().find(row), std::string::npos) << "docs/bench.md lacks the row of " << o.key;
  }
}

}  // namespace
}  // namespace baton::bench

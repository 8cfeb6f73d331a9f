// The CLI binding of the workload schema: every option becomes its flag,
// parses into the settings, and the flags given are told from the defaults.
#include <gtest/gtest.h>

#include "cli/workload_flags.h"

namespace baton::cli {
namespace {

TEST(WorkloadFlagsTest, EveryOptionIsAFlagAndGivenFlagsAreNoted) {
  CLI::App app;
  bench::WorkloadSettings s;
  add_workload_flags(app, s);
  for (const auto& o : bench::workload_options()) EXPECT_NE(app.get_option_no_throw(o.flag), nullptr) << o.flag;
  app.parse("--input-len 64:128 --duration-s 30 --trace x.csv --seed 7", false);
  note_given_workload_flags(app, s);
  EXPECT_EQ(s.input_len, "64:128");
  EXPECT_EQ(s.duration_s, 30.0);
  EXPECT_EQ(s.seed, 7u);
  EXPECT_EQ(s.given, (std::set<std::string>{"input_len", "duration_s", "trace", "seed"}));
  auto w = bench::to_workload_options(s, bench::OptionNames::kFlag).value();
  EXPECT_EQ(w.kind, "trace");     // --trace without --workload
  EXPECT_EQ(w.num_requests, 0u);  // --duration-s without --num-requests
  EXPECT_EQ(w.input_len.max, 128);
}

TEST(WorkloadFlagsTest, ABadValueIsAParseError) {
  CLI::App app;
  bench::WorkloadSettings s;
  add_workload_flags(app, s);
  EXPECT_THROW(app.parse("--num-requests many", false), CLI::ParseError);
  EXPECT_THROW(app.parse("--warmup-s -1", false), CLI::ParseError);  // the schema's range
  EXPECT_THROW(app.parse("--attainment 1.5", false), CLI::ParseError);
}

}  // namespace
}  // namespace baton::cli

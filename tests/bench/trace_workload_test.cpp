#include <gtest/gtest.h>

#include <map>
#include <set>

#include "bench/prefix_cache_check.h"
#include "bench/trace.h"
#include "bench/workload.h"

namespace baton::bench {
namespace {

const std::string kTraces = std::string(BATON_TEST_DATA) + "/traces/";

TEST(TraceTest, AzureSharedTrace) {
  auto t = load_trace(kTraces + "azure_llm_2023_conv.csv", TraceFormat::kAzure);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  ASSERT_EQ(t->size(), 19366u);
  EXPECT_EQ((*t)[0].timestamp_s, 0.0);
  // Second line "2023-11-16 18:15:50.9951690,396,109" is 4.314579 s after the first.
  EXPECT_NEAR((*t)[1].timestamp_s, 50.9951690 - 46.6805900, 1e-6);
  EXPECT_EQ((*t)[0].input_tokens, 374);
  EXPECT_EQ((*t)[0].output_tokens, 44);
  for (size_t i = 1; i < t->size(); ++i) ASSERT_GE((*t)[i].timestamp_s, (*t)[i - 1].timestamp_s);
  EXPECT_GT(t->back().timestamp_s, 3000.0);  // about an hour
  EXPECT_LT(t->back().timestamp_s, 4000.0);
}

TEST(TraceTest, AzureBadLinesNameTheLine) {
  std::string head = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
  auto e1 = parse_azure_csv(head + "2023-11-16 18:15:46.68,374,44\n2023-11-16 18:15:47,abc,3\n", "t.csv");
  EXPECT_NE(e1.status().message().find("t.csv:3: ContextTokens 'abc'"), std::string::npos) << e1.status().to_string();
  auto e2 = parse_azure_csv(head + "2023-11-16 18:15:46.68,374\n", "t.csv");
  EXPECT_NE(e2.status().message().find("t.csv:2: expected 3 fields"), std::string::npos) << e2.status().to_string();
  auto e3 = parse_azure_csv(head + "yesterday,1,2\n", "t.csv");
  EXPECT_NE(e3.status().message().find("t.csv:2: bad timestamp 'yesterday'"), std::string::npos);
  auto e4 = parse_azure_csv("a,b,c\n", "t.csv");
  EXPECT_NE(e4.status().message().find("t.csv:1: header"), std::string::npos);
  auto e5 = parse_azure_csv(head + "2023-11-16 18:15:46,0,3\n", "t.csv");
  EXPECT_NE(e5.status().message().find("positive"), std::string::npos);
  EXPECT_FALSE(parse_azure_csv(head, "t.csv").is_ok());
  // Columns found by name, any order; CRLF tolerated.
  auto ok = parse_azure_csv("GeneratedTokens,TIMESTAMP,ContextTokens\r\n5,2023-01-01 00:00:01,7\r\n", "x");
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ((*ok)[0].input_tokens, 7);
  EXPECT_EQ((*ok)[0].output_tokens, 5);
}

TEST(TraceTest, TimestampParsing) {
  EXPECT_DOUBLE_EQ(parse_timestamp("1970-01-02 00:00:01.5").value(), 86401.5);
  EXPECT_DOUBLE_EQ(parse_timestamp("2000-03-01 00:00:00").value(), 951868800.0);
  EXPECT_FALSE(parse_timestamp("2000-13-01 00:00:00").is_ok());
}

TEST(TraceTest, MooncakeSharedTrace) {
  auto t = load_trace(kTraces + "mooncake_synthetic_trace.jsonl", TraceFormat::kMooncake);
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  ASSERT_EQ(t->size(), 3993u);
  EXPECT_EQ((*t)[0].input_tokens, 40160);
  EXPECT_EQ((*t)[0].output_tokens, 6);
  EXPECT_EQ((*t)[0].hash_ids.size(), 79u);  // ceil(40160 / 512)
  // Some hash ids recur across requests: the trace's prefix reuse.
  std::map<int64_t, int> uses;
  for (const auto& e : *t) {
    for (auto id : e.hash_ids) uses[id]++;
  }
  int shared = 0;
  for (auto& [id, n] : uses) shared += n > 1;
  EXPECT_GT(shared, 100);
}

TEST(TraceTest, MooncakeBadLinesNameTheLine) {
  std::string good = R"({"timestamp": 10, "input_length": 600, "output_length": 4, "hash_ids": [1, 2]})";
  auto e1 = parse_mooncake_jsonl(good + "\n{\"timestamp\": 11, \"input_length\": 5}\n", "m.jsonl");
  EXPECT_NE(e1.status().message().find("m.jsonl:2: missing field 'output_length'"), std::string::npos)
      << e1.status().to_string();
  auto e2 = parse_mooncake_jsonl(good + "\n\n{not json\n", "m.jsonl");
  EXPECT_NE(e2.status().message().find("m.jsonl:3:"), std::string::npos) << e2.status().to_string();
  auto e3 = parse_mooncake_jsonl(R"({"timestamp": 1, "input_length": "x", "output_length": 1})", "m.jsonl");
  EXPECT_NE(e3.status().message().find("m.jsonl:1: field 'input_length' has the wrong type"), std::string::npos)
      << e3.status().to_string();
  auto e4 = parse_mooncake_jsonl(R"({"timestamp": 1, "input_length": 3, "output_length": 0})", "m.jsonl");
  EXPECT_NE(e4.status().message().find("output_length 0"), std::string::npos);
  auto ok = parse_mooncake_jsonl(good, "m");
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ((*ok)[0].timestamp_s, 0.0);
}

TEST(WorkloadTest, RandomLengthsInRangeAndSeeded) {
  WorkloadOptions o;
  o.input_len = parse_length_range("100:200", "input").value();
  o.output_len = parse_length_range("8", "output").value();
  o.num_requests = 500;
  o.arrival = {ArrivalKind::kPoisson, 10, 1, 5};
  o.seed = 5;
  auto w = make_workload(o).value();
  ASSERT_EQ(w.requests.size(), 500u);
  std::set<int64_t> lens;
  for (const auto& r : w.requests) {
    EXPECT_GE(r.prompt_tokens, 100);
    EXPECT_LE(r.prompt_tokens, 200);
    EXPECT_EQ(r.output_tokens, 8);
    EXPECT_EQ(static_cast<int64_t>(materialize_ids(r.prompt, o.vocab_size).size()), r.prompt_tokens);
    lens.insert(r.prompt_tokens);
  }
  EXPECT_GT(lens.size(), 50u);
  auto again = make_workload(o).value();
  EXPECT_EQ(materialize_ids(again.requests[7].prompt, 1000), materialize_ids(w.requests[7].prompt, 1000));
  EXPECT_EQ(again.requests[7].arrival_s, w.requests[7].arrival_s);
  // Ids stay away from both ends of the vocabulary.
  auto [lo, hi] = token_id_range(151936);
  for (int32_t id : materialize_ids(w.requests[0].prompt, 151936)) {
    EXPECT_GE(id, lo);
    EXPECT_LT(id, hi);
  }
  EXPECT_FALSE(parse_length_range("200:100", "input").is_ok());
  EXPECT_FALSE(parse_length_range("x", "input").is_ok());
}

TEST(WorkloadTest, PrefixGroupsShareTheirPrefix) {
  WorkloadOptions o;
  o.kind = "prefix";
  o.input_len = {1000, 1000};
  o.num_requests = 200;
  o.num_prefix_groups = 4;
  o.prefix_hit_rate = 0.75;
  auto w = make_workload(o).value();
  // Count tokens a prefix cache would hit: the longest prefix shared with any earlier prompt.
  std::vector<std::vector<int32_t>> seen;
  int64_t hit = 0, total = 0;
  for (const auto& r : w.requests) {
    auto ids = materialize_ids(r.prompt, o.vocab_size);
    size_t best = 0;
    for (const auto& s : seen) {
      size_t k = 0;
      while (k < ids.size() && k < s.size() && ids[k] == s[k]) ++k;
      best = std::max(best, k);
    }
    hit += static_cast<int64_t>(best);
    total += static_cast<int64_t>(ids.size());
    seen.push_back(std::move(ids));
  }
  double rate = static_cast<double>(hit) / static_cast<double>(total);
  EXPECT_NEAR(rate, 0.75 * (200 - 4) / 200.0, 0.01);  // each group's first use misses
}

TEST(WorkloadTest, MultiturnPromptIsTheConversationSoFar) {
  WorkloadOptions o;
  o.kind = "multiturn";
  o.input_len = {20, 20};
  o.output_len = {10, 10};
  o.num_requests = 12;
  o.num_turns = 3;
  o.think_time_s = 0.5;
  auto w = make_workload(o).value();
  ASSERT_EQ(w.requests.size(), 12u);  // 4 sessions x 3 turns
  const auto& t0 = w.requests[0];
  const auto& t1 = w.requests[1];
  const auto& t2 = w.requests[2];
  EXPECT_EQ(t0.next_turn, 1);
  EXPECT_EQ(t1.next_turn, 2);
  EXPECT_EQ(t2.next_turn, -1);
  EXPECT_EQ(t0.prompt_tokens, 20);
  EXPECT_EQ(t1.prompt_tokens, 20 + 10 + 20);
  EXPECT_EQ(t2.prompt_tokens, 20 + 10 + 20 + 10 + 20);
  EXPECT_DOUBLE_EQ(t1.think_time_s, 0.5);
  auto a = materialize_ids(t1.prompt, 5000);
  auto b = materialize_ids(t2.prompt, 5000);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
  EXPECT_NE(materialize_ids(w.requests[3].prompt, 5000), materialize_ids(t0.prompt, 5000));
  EXPECT_FALSE(materialize_text(t0.prompt).empty());
}

TEST(WorkloadTest, MooncakeHashIdsBecomeEqualBlocks) {
  std::string text = R"({"timestamp": 0, "input_length": 1100, "output_length": 4, "hash_ids": [1, 2, 3]})"
                     "\n"
                     R"({"timestamp": 500, "input_length": 700, "output_length": 4, "hash_ids": [1, 9]})"
                     "\n"
                     R"({"timestamp": 1500, "input_length": 1300, "output_length": 4, "hash_ids": [1, 2]})";
  auto entries = parse_mooncake_jsonl(text, "m").value();
  WorkloadOptions o;
  o.kind = "trace";
  o.trace_path = "m";
  o.time_scale = 2.0;
  o.num_requests = 0;
  o.duration_s = 100;
  auto w = make_trace_workload(entries, o).value();
  ASSERT_EQ(w.requests.size(), 3u);
  EXPECT_DOUBLE_EQ(w.requests[1].arrival_s, 1.0);  // 500 ms x 2
  EXPECT_DOUBLE_EQ(w.requests[2].arrival_s, 3.0);
  auto r0 = materialize_ids(w.requests[0].prompt, 32000);
  auto r1 = materialize_ids(w.requests[1].prompt, 32000);
  auto r2 = materialize_ids(w.requests[2].prompt, 32000);
  ASSERT_EQ(r0.size(), 1100u);
  ASSERT_EQ(r1.size(), 700u);
  ASSERT_EQ(r2.size(), 1300u);
  EXPECT_TRUE(std::equal(r0.begin(), r0.begin() + 512, r1.begin()));               // block 1 shared
  EXPECT_FALSE(std::equal(r0.begin() + 512, r0.begin() + 700, r1.begin() + 512));  // 2 vs 9
  EXPECT_TRUE(std::equal(r0.begin(), r0.begin() + 1024, r2.begin()));              // blocks 1, 2 shared
  EXPECT_FALSE(std::equal(r0.begin() + 1024, r0.end(), r2.begin() + 1024));        // 3 vs unique tail
  EXPECT_NEAR(w.natural_rate, 2 / 1.5, 1e-12);
  o.rate_overrides_trace = true;
  o.arrival.rate = 4.0;  // 3x the natural 1.333/s
  auto fast = make_trace_workload(entries, o).value();
  EXPECT_NEAR(fast.requests[2].arrival_s, 0.5, 1e-12);
}

// A sweep trial over a time window (duration_s, no request count): the trace
// rescaled to the rate asked, and only what arrives inside the window; a
// multi-turn workload starts its sessions inside the window, every turn kept.
// Which workloads should find the server's prefix cache cold (prefix_cache_check.h): those whose
// prompts share no segment. Random and Azure-trace prompts share none; prefix groups, multiturn
// histories and Mooncake hash ids do.
TEST(WorkloadTest, OnlyWorkloadsThatSharePrefixesExpectPrefixCacheHits) {
  WorkloadOptions o;
  o.num_requests = 50;
  o.input_len = {64, 64};
  EXPECT_FALSE(workload_shares_prefixes(make_workload(o).value()));
  o.kind = "prefix";
  EXPECT_TRUE(workload_shares_prefixes(make_workload(o).value()));
  o.kind = "multiturn";
  o.num_requests = 8;
  EXPECT_TRUE(workload_shares_prefixes(make_workload(o).value()));
  o.kind = "trace";
  o.trace_path = kTraces + "azure_llm_2023_conv.csv";
  o.num_requests = 40;
  EXPECT_FALSE(workload_shares_prefixes(make_workload(o).value()));
  std::string text = R"({"timestamp": 0, "input_length": 600, "output_length": 4, "hash_ids": [1, 2]})"
                     "\n"
                     R"({"timestamp": 500, "input_length": 600, "output_length": 4, "hash_ids": [1, 3]})";
  o.trace_path = "m";
  EXPECT_TRUE(workload_shares_prefixes(make_trace_workload(parse_mooncake_jsonl(text, "m").value(), o).value()));
  // The check's verdict: hits are news only where none were expected.
  EXPECT_EQ(check_prefix_cache(100, 100, 1000, false).warning, "");
  EXPECT_EQ(check_prefix_cache(100, 600, 1000, true).warning, "");
  EXPECT_NE(check_prefix_cache(100, 600, 1000, false).warning.find("500 prefix-cache hit tokens (50% of the 1000"),
            std::string::npos);
  EXPECT_FALSE(check_prefix_cache(std::nullopt, 600, 1000, false).checked) << "not read before: no verdict";
}

TEST(WorkloadTest, TimeWindowsForTracesAndSessions) {
  WorkloadOptions o;
  o.kind = "trace";
  o.trace_path = kTraces + "azure_llm_2023_conv.csv";
  o.trace_format = TraceFormat::kAzure;
  o.num_requests = 0;
  o.duration_s = 20;
  o.rate_overrides_trace = true;
  o.arrival.rate = 40;
  auto w = make_workload(o).value();
  ASSERT_FALSE(w.requests.empty());
  for (const auto& r : w.requests) ASSERT_LT(r.arrival_s, 20.0);
  // The trace's own burstiness: about rate x window, not exactly.
  EXPECT_GT(w.requests.size(), 400u);
  EXPECT_LT(w.requests.size(), 1600u);
  EXPECT_NEAR(w.natural_rate / w.time_scale, 40.0, 1e-9);

  WorkloadOptions m;
  m.kind = "multiturn";
  m.num_turns = 10;
  m.input_len = {128, 128};
  m.output_len = {128, 128};
  m.num_requests = 0;
  m.duration_s = 25;
  m.arrival.rate = 4;  // sessions/s
  auto mw = make_workload(m).value();
  ASSERT_EQ(mw.requests.size() % 10, 0u);
  const size_t num_sessions = mw.requests.size() / 10;
  EXPECT_GT(num_sessions, 60u);  // Poisson: ~100 sessions in 25 s
  EXPECT_LT(num_sessions, 140u);
  int64_t cached = 0, total = 0;
  for (const auto& r : mw.requests) {
    ASSERT_LT(r.arrival_s, 25.0);  // a session's start
    total += r.prompt_tokens;
    if (r.turn > 0) cached += r.prompt_tokens - 128 - 128;  // the previous turn's prompt
  }
  EXPECT_NEAR(static_cast<double>(cached) / static_cast<double>(total), 0.81, 0.005);  // the experiment's "~80%"
}

TEST(WorkloadTest, RejectsBadOptions) {
  WorkloadOptions o;
  o.kind = "zipf";
  EXPECT_NE(make_workload(o).status().message().find("unknown workload"), std::string::npos);
  o.kind = "trace";
  EXPECT_NE(make_workload(o).status().message().find("--trace"), std::string::npos);
  o.trace_path = "/nonexistent.csv";
  EXPECT_FALSE(make_workload(o).is_ok());
  o.kind = "prefix";
  o.prefix_hit_rate = 1.0;
  EXPECT_FALSE(make_workload(o).is_ok());
}

}  // namespace
}  // namespace baton::bench

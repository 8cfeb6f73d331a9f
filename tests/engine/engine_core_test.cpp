#include "engine/engine_core.h"

#include <gtest/gtest.h>

#include "engine/engine_test_util.h"

namespace baton {
namespace {

using namespace baton::testing;

TEST(EngineCore, GreedyOutputMatchesTheReference) {
  auto engine = make_engine({});
  auto prompt = tokens(37, 10);
  ASSERT_TRUE(engine->add_request(gen("r", prompt, 20)).is_ok());
  auto out = run_to_completion(*engine);
  EXPECT_EQ(out["r"].ids, fake_reference(prompt, 20));
  EXPECT_EQ(out["r"].finish_reason, FinishReason::kLength);
  EXPECT_EQ(engine->kv_cache().num_free_blocks(), engine->num_kv_blocks());
}

// Many requests under pressure (a small budget forces chunked prefill, few
// blocks force preemption): every output is what the request gives alone.
void check_batch_invariance(bool prefix_caching) {
  EngineOptions opts;
  opts.block_size = 4;
  opts.num_kv_blocks = 40;
  opts.max_num_batched_tokens = 32;
  opts.enable_prefix_caching = prefix_caching;
  FakeBackend* backend = nullptr;
  auto engine = make_engine(opts, &backend);
  std::map<std::string, std::vector<int32_t>> expected;
  for (int i = 0; i < 12; ++i) {
    // Shared prefixes between some requests exercise prefix hits too.
    auto prompt = tokens(5 + 9 * i, (i % 3) * 100);
    const int max_tokens = 10 + 3 * i;
    const std::string id = "r" + std::to_string(i);
    expected[id] = fake_reference(prompt, max_tokens);
    ASSERT_TRUE(engine->add_request(gen(id, prompt, max_tokens)).is_ok()) << id;
  }
  auto out = run_to_completion(*engine);
  for (auto& [id, ids] : expected) EXPECT_EQ(out[id].ids, ids) << id;
  EngineStats s = engine->stats();
  EXPECT_GT(s.num_preemptions, 0);
  for (int n : backend->num_tokens_per_step) EXPECT_LE(n, 32);
  EXPECT_EQ(s.num_kv_blocks_free, s.num_kv_blocks_total);
  if (!prefix_caching) {
    EXPECT_EQ(s.prefix_cache_hits, 0);
    EXPECT_EQ(s.num_kv_blocks_cached, 0);
  }
}

TEST(EngineCore, BatchInvarianceUnderPressureWithPrefixCaching) { check_batch_invariance(true); }
TEST(EngineCore, BatchInvarianceUnderPressureWithoutPrefixCaching) { check_batch_invariance(false); }

TEST(EngineCore, PrefixCachingComputesOnlyTheSuffix) {
  EngineOptions opts;  // block_size 16
  auto engine = make_engine(opts);
  auto prefix = tokens(200, 1);
  auto with_suffix = [&](int s) {
    auto p = prefix;
    for (int i = 0; i < 20; ++i) p.push_back(500 + s * 20 + i);
    return p;
  };
  ASSERT_TRUE(engine->add_request(gen("first", with_suffix(0), 5)).is_ok());
  auto out = run_to_completion(*engine);
  EXPECT_EQ(out["first"].num_cached_tokens, 0);
  EXPECT_EQ(engine->stats().prompt_tokens_total, 220);
  for (int s = 1; s <= 3; ++s) {
    const std::string id = "s" + std::to_string(s);
    const int64_t before = engine->stats().prompt_tokens_total;
    const int64_t hits_before = engine->stats().prefix_cache_hits;
    ASSERT_TRUE(engine->add_request(gen(id, with_suffix(s), 5)).is_ok());
    auto o = run_to_completion(*engine);
    // 200 = 12 full blocks (192 tokens) + 8: the 12 blocks are reused.
    EXPECT_EQ(o[id].num_cached_tokens, 192) << id;
    EXPECT_EQ(engine->stats().prompt_tokens_total - before, 220 - 192) << id;
    EXPECT_EQ(engine->stats().prefix_cache_hits - hits_before, 192) << id;
    EXPECT_EQ(o[id].ids, fake_reference(with_suffix(s), 5)) << id;
  }
  EngineStats st = engine->stats();
  EXPECT_EQ(st.prefix_cache_queries, 4 * 220);
  EXPECT_EQ(st.num_kv_blocks_free, st.num_kv_blocks_total);
  EXPECT_GT(st.num_kv_blocks_cached, 0);
}

TEST(EngineCore, NoPrefixCachingRecomputesEverything) {
  EngineOptions opts;
  opts.enable_prefix_caching = false;
  auto engine = make_engine(opts);
  auto p = tokens(100, 1);
  ASSERT_TRUE(engine->add_request(gen("a", p, 3)).is_ok());
  run_to_completion(*engine);
  ASSERT_TRUE(engine->add_request(gen("b", p, 3)).is_ok());
  auto o = run_to_completion(*engine);
  EXPECT_EQ(o["b"].num_cached_tokens, 0);
  EXPECT_EQ(engine->stats().prompt_tokens_total, 200);
}

TEST(EngineCore, SeededSamplingIsTheSameAloneAndInABatch) {
  SamplingParams p;
  p.temperature = 0.8f;
  p.seed = 1234;
  auto prompt = tokens(9, 3);
  std::vector<int32_t> alone;
  {
    auto engine = make_engine({});
    auto g = gen("x", prompt, 12);
    g.sampling = p;
    ASSERT_TRUE(engine->add_request(g).is_ok());
    alone = run_to_completion(*engine)["x"].ids;
  }
  EXPECT_EQ(alone, fake_reference(prompt, 12, p, 1234));
  EngineOptions opts;
  opts.block_size = 4;
  opts.num_kv_blocks = 24;
  opts.max_num_batched_tokens = 16;
  auto engine = make_engine(opts);
  for (int i = 0; i < 6; ++i) {
    auto g = gen("o" + std::to_string(i), tokens(7 + 5 * i, 50 * i), 12);
    g.sampling.temperature = 1.0f;
    ASSERT_TRUE(engine->add_request(g).is_ok());
  }
  auto g = gen("x", prompt, 12);
  g.sampling = p;
  ASSERT_TRUE(engine->add_request(g).is_ok());
  EXPECT_EQ(run_to_completion(*engine)["x"].ids, alone);
}

TEST(EngineCore, UnseededRequestsDrawSeedsFromTheEngineSeed) {
  auto run_two = [](uint64_t engine_seed) {
    EngineOptions opts;
    opts.seed = engine_seed;
    auto engine = make_engine(opts);
    for (const char* id : {"a", "b"}) {
      auto g = gen(id, tokens(5, 1), 8);
      g.sampling.temperature = 1.0f;
      EXPECT_TRUE(engine->add_request(g).is_ok());
    }
    auto out = run_to_completion(*engine);
    return std::make_pair(out["a"].ids, out["b"].ids);
  };
  auto [a1, b1] = run_two(1);
  auto [a2, b2] = run_two(1);
  auto [a3, b3] = run_two(2);
  EXPECT_EQ(a1, a2);
  EXPECT_EQ(b1, b2);
  EXPECT_NE(a1, b1);  // same prompt, different drawn seeds
  EXPECT_NE(a1, a3);
}

TEST(EngineCore, RejectsRequestsThatCanNeverFit) {
  EngineOptions opts;
  opts.block_size = 4;
  opts.num_kv_blocks = 10;  // 40 tokens
  opts.max_model_len = 64;
  auto engine = make_engine(opts);
  Status s = engine->add_request(gen("ctx", tokens(60, 1), 10));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("context"), std::string::npos) << s.message();
  s = engine->add_request(gen("cache", tokens(30, 1), 20));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("KV blocks"), std::string::npos) << s.message();
  EXPECT_EQ(engine->add_request(gen("tok", {1, 5000}, 2)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->add_request(gen("empty", {}, 2)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->add_request(gen("zero", {1}, 0)).code(), StatusCode::kInvalidArgument);
  auto bad = gen("topp", {1}, 2);
  bad.sampling.top_p = 0.0f;
  EXPECT_EQ(engine->add_request(bad).code(), StatusCode::kInvalidArgument);
  auto stop = gen("stop", {1}, 2);
  stop.stop = {"x"};  // no tokenizer
  EXPECT_EQ(engine->add_request(stop).code(), StatusCode::kInvalidArgument);
  auto bias = gen("bias", {1}, 2);
  bias.sampling.logit_bias = {{5000, 1.0f}};  // past the vocabulary
  s = engine->add_request(bias);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("logit_bias token 5000"), std::string::npos) << s.message();
  bias.sampling.logit_bias = {{2, 1.0f}, {1, 1.0f}};  // not ascending
  EXPECT_EQ(engine->add_request(bias).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(engine->has_unfinished_requests());
  // Exactly at the limits is fine (the last token needs no slot).
  ASSERT_TRUE(engine->add_request(gen("fits", tokens(30, 1), 11)).is_ok());
  EXPECT_EQ(engine->add_request(gen("fits", {1}, 1)).code(), StatusCode::kInvalidArgument);  // duplicate id
  auto out = run_to_completion(*engine);
  EXPECT_EQ(out["fits"].ids.size(), 11u);
}

TEST(EngineCore, EosStopsUnlessIgnoredAndNotBeforeMinTokens) {
  FakeBackend* backend = nullptr;
  auto engine = make_engine({}, &backend);
  backend->script = {5, 2, 6, 7, 2, 8};  // 2 is the fake model's EOS
  ASSERT_TRUE(engine->add_request(gen("eos", {1, 3}, 10, /*ignore_eos=*/false)).is_ok());
  auto ign = gen("ign", {1, 4}, 6, /*ignore_eos=*/true);
  ASSERT_TRUE(engine->add_request(ign).is_ok());
  auto min = gen("min", {1, 5}, 10, false);
  min.min_tokens = 3;  // EOS banned for the first 3 tokens: 2 -> 3
  ASSERT_TRUE(engine->add_request(min).is_ok());
  auto sid = gen("sid", {1, 6}, 10, true);
  sid.stop_token_ids = {7};
  ASSERT_TRUE(engine->add_request(sid).is_ok());
  auto out = run_to_completion(*engine);
  EXPECT_EQ(out["eos"].ids, (std::vector<int32_t>{5, 2}));
  EXPECT_EQ(out["eos"].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out["ign"].ids, (std::vector<int32_t>{5, 2, 6, 7, 2, 8}));
  EXPECT_EQ(out["ign"].finish_reason, FinishReason::kLength);
  EXPECT_EQ(out["min"].ids, (std::vector<int32_t>{5, 3, 6, 7, 2}));
  EXPECT_EQ(out["sid"].ids, (std::vector<int32_t>{5, 2, 6, 7}));
  EXPECT_EQ(out["sid"].finish_reason, FinishReason::kStop);
}

TEST(EngineCore, StopStringsMatchAcrossTokenBoundariesAndAreExcluded) {
  FakeBackend* backend = nullptr;
  auto detok = std::make_shared<TableDetokenizer>(
      std::map<int32_t, std::string>{{10, "Hel"}, {11, "lo wo"}, {12, "rld"}, {13, "!"}, {14, " and"}, {15, " more"}});
  auto engine = make_engine({}, &backend, detok);
  backend->script = {10, 11, 12, 13, 14, 15};
  auto a = gen("a", {1}, 10);
  a.stop = {"o wor"};
  ASSERT_TRUE(engine->add_request(a).is_ok());
  auto b = gen("b", {2}, 6);
  b.stop = {"zzz"};
  ASSERT_TRUE(engine->add_request(b).is_ok());
  auto c = gen("c", {3}, 10);
  c.stop = {"! a", "ld"};  // the earliest match wins
  ASSERT_TRUE(engine->add_request(c).is_ok());
  auto d = gen("d", {4}, 10);
  d.stop = {"Hel"};
  d.min_tokens = 2;  // no stop before 2 tokens: "Hel" is never seen again
  ASSERT_TRUE(engine->add_request(d).is_ok());
  auto out = run_to_completion(*engine);
  EXPECT_EQ(out["a"].text, "Hell");
  EXPECT_EQ(out["a"].ids, (std::vector<int32_t>{10, 11, 12}));
  EXPECT_EQ(out["a"].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out["b"].text, "Hello world! and more");
  EXPECT_EQ(out["b"].finish_reason, FinishReason::kLength);
  EXPECT_EQ(out["c"].text, "Hello wor");
  // The second "Hel" (7th token) stops d.
  EXPECT_EQ(out["d"].text, "Hello world! and more");
  EXPECT_EQ(out["d"].ids.size(), 7u);
  EXPECT_EQ(out["d"].finish_reason, FinishReason::kStop);
}

TEST(EngineCore, IncludeStopStrInOutputKeepsTheMatchAndCutsAfterIt) {
  FakeBackend* backend = nullptr;
  auto detok = std::make_shared<TableDetokenizer>(
      std::map<int32_t, std::string>{{10, "Hel"}, {11, "lo wo"}, {12, "rld"}, {13, "!"}, {14, " and"}});
  auto engine = make_engine({}, &backend, detok);
  backend->script = {10, 11, 12, 13, 14};
  auto a = gen("a", {1}, 10);
  a.stop = {"o wor"};  // across tokens 11 and 12; "ld" after it is cut
  a.include_stop_str_in_output = true;
  ASSERT_TRUE(engine->add_request(a).is_ok());
  auto b = gen("b", {2}, 10);
  b.stop = {"zz", "! a"};  // the first listed never matches; the match ends inside token 14
  b.include_stop_str_in_output = true;
  ASSERT_TRUE(engine->add_request(b).is_ok());
  // A stop token's text too, when asked for (vLLM), and not otherwise.
  auto c = gen("c", {3}, 10);
  c.stop_token_ids = {12};
  c.include_stop_str_in_output = true;
  ASSERT_TRUE(engine->add_request(c).is_ok());
  auto d = gen("d", {4}, 10);
  d.stop_token_ids = {12};
  ASSERT_TRUE(engine->add_request(d).is_ok());
  auto out = run_to_completion(*engine);
  EXPECT_EQ(out["a"].text, "Hello wor");
  EXPECT_EQ(out["a"].ids, (std::vector<int32_t>{10, 11, 12}));
  EXPECT_EQ(out["a"].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out["b"].text, "Hello world! a");
  EXPECT_EQ(out["b"].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out["c"].text, "Hello world");
  EXPECT_EQ(out["c"].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out["d"].text, "Hello wo");
  EXPECT_EQ(out["d"].ids, (std::vector<int32_t>{10, 11, 12}));
}

TEST(EngineCore, SkipSpecialTokensIsPerRequest) {
  FakeBackend* backend = nullptr;
  auto detok = std::make_shared<TableDetokenizer>(
      std::map<int32_t, std::string>{{10, "a"}, {11, "<|tool|>"}, {12, "b"}}, std::set<int32_t>{11});
  auto engine = make_engine({}, &backend, detok);
  backend->script = {10, 11, 12};
  ASSERT_TRUE(engine->add_request(gen("skip", {1}, 3)).is_ok());
  auto keep = gen("keep", {2}, 3);
  keep.skip_special_tokens = false;
  ASSERT_TRUE(engine->add_request(keep).is_ok());
  auto out = run_to_completion(*engine);
  EXPECT_EQ(out["skip"].text, "ab");
  EXPECT_EQ(out["keep"].text, "a<|tool|>b");
  EXPECT_EQ(out["keep"].ids, (std::vector<int32_t>{10, 11, 12}));
}

TEST(EngineCore, StreamedTextHoldsBackAPossibleStopStringStart) {
  FakeBackend* backend = nullptr;
  auto detok = std::make_shared<TableDetokenizer>(std::map<int32_t, std::string>{{10, "ab"}, {11, "cd"}, {12, "ef"}});
  auto engine = make_engine({}, &backend, detok);
  backend->script = {10, 11, 12};
  auto g = gen("a", {1}, 3);
  g.stop = {"dx?"};
  ASSERT_TRUE(engine->add_request(g).is_ok());
  std::vector<std::string> pieces;
  while (engine->has_unfinished_requests()) {
    for (auto& o : engine->step()) pieces.push_back(o.new_text);
  }
  // "ab" -> hold 2 bytes; "abcd" -> emit "ab", hold "cd"; end: flush.
  EXPECT_EQ(pieces, (std::vector<std::string>{"", "ab", "cdef"}));
}

TEST(EngineCore, HeldBackTextNeverSplitsAUtf8Character) {
  FakeBackend* backend = nullptr;
  // "é" is 2 bytes, "€" 3: a byte-count hold-back would cut them.
  auto detok = std::make_shared<TableDetokenizer>(std::map<int32_t, std::string>{{10, "a\xc3\xa9"},
                                                                                 {11, "\xe2\x82\xac"},
                                                                                 {12,
                                                                                  "b\xc3\xa9"
                                                                                  "c"}});
  auto engine = make_engine({}, &backend, detok);
  backend->script = {10, 11, 12, 10};
  auto g = gen("a", {1}, 4);
  g.stop = {"xy"};  // hold back 1 byte
  ASSERT_TRUE(engine->add_request(g).is_ok());
  std::string all;
  while (engine->has_unfinished_requests()) {
    for (auto& o : engine->step()) {
      // Every piece is whole characters: it never ends inside one.
      const std::string& t = o.new_text;
      size_t i = 0;
      while (i < t.size()) {
        const unsigned char c = static_cast<unsigned char>(t[i]);
        const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        ASSERT_LE(i + len, t.size()) << "piece ends inside a character";
        i += len;
      }
      all += t;
    }
  }
  EXPECT_EQ(all,
            "a\xc3\xa9\xe2\x82\xac"
            "b\xc3\xa9"
            "c"
            "a\xc3\xa9");
}

TEST(EngineCore, LogprobsOfTheSampledTokenAndTopN) {
  auto engine = make_engine({});
  auto g = gen("a", {1, 2, 3}, 4);
  g.sampling.num_logprobs = 3;
  ASSERT_TRUE(engine->add_request(g).is_ok());
  auto g2 = gen("b", {1, 2, 3}, 4);
  ASSERT_TRUE(engine->add_request(g2).is_ok());
  auto out = run_to_completion(*engine);
  ASSERT_EQ(out["a"].logprobs.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(out["a"].logprobs[i].token_id, out["a"].ids[i]);
    EXPECT_EQ(out["a"].logprobs[i].top.size(), 3u);
  }
  EXPECT_TRUE(out["b"].logprobs.empty());
}

TEST(EngineCore, AbortMidPrefillAndMidDecodeFreesEveryBlock) {
  EngineOptions opts;
  opts.block_size = 4;
  opts.num_kv_blocks = 64;
  opts.max_num_batched_tokens = 8;
  auto engine = make_engine(opts);
  auto p = tokens(40, 1);
  ASSERT_TRUE(engine->add_request(gen("prefill", p, 10)).is_ok());
  ASSERT_TRUE(engine->add_request(gen("decode", tokens(3, 900), 50)).is_ok());
  std::map<std::string, Collected> all;
  collect(all, engine->step());  // prefill: 8 of 40 tokens
  collect(all, engine->step());
  EXPECT_LT(engine->kv_cache().num_free_blocks(), 64);
  auto o = engine->abort_request("prefill");
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->finished);
  EXPECT_EQ(o->finish_reason, FinishReason::kAbort);
  EXPECT_FALSE(engine->abort_request("prefill").has_value());  // already gone
  for (int i = 0; i < 10; ++i) collect(all, engine->step());
  EXPECT_GT(all["decode"].ids.size(), 3u);
  EXPECT_FALSE(all["decode"].finished);
  auto d = engine->abort_request("decode");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->finish_reason, FinishReason::kAbort);
  EXPECT_FALSE(engine->has_unfinished_requests());
  EXPECT_EQ(engine->kv_cache().num_free_blocks(), 64);
  EXPECT_EQ(engine->kv_cache().num_requests(), 0);
  EXPECT_EQ(engine->stats().num_requests_finished, 2);
  EXPECT_EQ(engine->stats().num_requests_aborted, 2);
  // Abort while waiting, too.
  ASSERT_TRUE(engine->add_request(gen("w", p, 4)).is_ok());
  ASSERT_TRUE(engine->abort_request("w").has_value());
  EXPECT_EQ(engine->kv_cache().num_free_blocks(), 64);
}

TEST(EngineCore, ABackendFailureEndsTheStepsRequestsWithAnError) {
  FakeBackend* backend = nullptr;
  auto engine = make_engine({}, &backend);
  ASSERT_TRUE(engine->add_request(gen("a", {1, 2}, 5)).is_ok());
  backend->fail_next = true;
  auto outs = engine->step();
  ASSERT_EQ(outs.size(), 1u);
  EXPECT_TRUE(outs[0].finished);
  EXPECT_NE(outs[0].error.find("injected"), std::string::npos);
  EXPECT_FALSE(engine->has_unfinished_requests());
  EXPECT_EQ(engine->kv_cache().num_free_blocks(), engine->num_kv_blocks());
}

TEST(EngineCore, ABackendBrokenForGoodEndsEveryLiveRequestAndRefusesNewOnes) {
  FakeBackend* backend = nullptr;
  EngineOptions opts;
  opts.max_num_seqs = 1;  // "b" waits while "a" runs
  auto engine = make_engine(opts, &backend);
  ASSERT_TRUE(engine->add_request(gen("a", {1, 2}, 5)).is_ok());
  ASSERT_TRUE(engine->add_request(gen("b", {3, 4}, 5)).is_ok());
  EXPECT_TRUE(engine->health().is_ok());
  backend->broken = true;
  std::vector<RequestOutput> outs = engine->step();
  ASSERT_EQ(outs.size(), 2u);  // the step's request, and the one still waiting
  for (const RequestOutput& o : outs) {
    EXPECT_TRUE(o.finished) << o.request_id;
    EXPECT_NE(o.error.find("broken for good"), std::string::npos) << o.request_id << ": " << o.error;
  }
  EXPECT_FALSE(engine->has_unfinished_requests());
  EXPECT_EQ(engine->kv_cache().num_free_blocks(), engine->num_kv_blocks());
  EXPECT_FALSE(engine->health().is_ok());
  Status again = engine->add_request(gen("c", {5}, 2));
  EXPECT_EQ(again.code(), StatusCode::kUnavailable);
  EXPECT_NE(again.message().find("broken for good"), std::string::npos) << again.to_string();
}

TEST(EngineCore, OutputsCarryTimingsAndCounts) {
  auto engine = make_engine({});
  ASSERT_TRUE(engine->add_request(gen("a", tokens(20, 1), 5)).is_ok());
  std::vector<RequestOutput> all;
  while (engine->has_unfinished_requests()) {
    for (auto& o : engine->step()) all.push_back(std::move(o));
  }
  ASSERT_EQ(all.size(), 5u);  // one per decode step
  const RequestOutput& last = all.back();
  EXPECT_TRUE(last.finished);
  EXPECT_EQ(last.num_prompt_tokens, 20);
  EXPECT_EQ(last.num_output_tokens, 5);
  EXPECT_GT(last.arrival_time_s, 0);
  EXPECT_LE(last.arrival_time_s, last.first_scheduled_time_s);
  EXPECT_LE(last.first_scheduled_time_s, last.first_token_time_s);
  EXPECT_LE(last.first_token_time_s, last.finished_time_s);
  EXPECT_EQ(all.front().new_token_times_s.size(), 1u);
  EXPECT_EQ(all.front().new_token_times_s[0], last.first_token_time_s);
  EngineStats s = engine->stats();
  EXPECT_EQ(s.num_steps, 5);
  EXPECT_EQ(s.prompt_tokens_total, 20);
  EXPECT_EQ(s.generation_tokens_total, 5);
  EXPECT_EQ(s.num_requests_finished, 1);
  EXPECT_EQ(s.num_requests_aborted, 0);
  EXPECT_EQ(s.last_step_num_seqs, 1);
  EXPECT_EQ(s.last_step_decode_tokens, 1);
  EXPECT_GT(s.step_time_total_s, 0.0);
}

TEST(EngineCore, KvCacheSizedFromBytes) {
  EngineOptions opts;
  opts.block_size = 16;
  opts.kv_cache_bytes = 16 * 8 * 100;  // the fake block is block_size * 8 bytes
  auto engine = make_engine(opts);
  EXPECT_EQ(engine->num_kv_blocks(), 100);
  EngineOptions bad;
  bad.max_model_len = 1 << 20;  // beyond the model's context
  auto r = EngineCore::create(std::make_unique<FakeBackend>(), nullptr, bad);
  EXPECT_FALSE(r.is_ok());
}

}  // namespace
}  // namespace baton

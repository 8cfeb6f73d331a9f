// Faults of the PD handoff on in-process instances (the faults that need a
// real peer process, kill -9 and SIGSTOP, are in pd_process_test.cpp), each
// ending with a clear error
// or a correct answer, no request hanging past the lease, and every
// instance's block pool fully free afterwards. Where the router is not the
// point, the test plays the router itself (prefill with do_remote_decode,
// then decode with the returned kv_transfer_params) to place the fault
// exactly between the two.
#include <gtest/gtest.h>

#include "pd_cluster.h"

namespace baton::pd_test {
namespace {

constexpr int kMaxTokens = 5;
const std::string kModel = "qwen3-tiny";

std::vector<std::string> agg_tokens(const Instance& agg, const std::vector<int>& prompt) {
  Completion c = post_completion(agg.url(), completion_body(prompt, kMaxTokens, false));
  EXPECT_EQ(c.http_status, 200) << c.raw;
  return c.tokens;
}

// Sets PD options the way the serve flags of the same names do.
Tweak lease_ms(int64_t ms) {
  return [ms](InstanceOptions& o) { o.pd.kv_lease_ms = ms; };
}
Tweak fault(const std::string& kind, bool checksum = false, const std::string& policy = "fail") {
  return [=](InstanceOptions& o) {
    o.pd.kv_fault = kind;
    o.pd.kv_checksum = checksum;
    o.pd.kv_load_failure_policy = policy;
  };
}

TEST(PdFaultsTest, ClientDisconnectsDuringPrefillAndDuringDecode) {
  const std::string model = fixture_model(kModel);
  // A small step budget makes a long prompt's prefill take many steps.
  auto prefill_ptr = start_instance(
      model, "prefill", "shm",
      [](InstanceOptions& o) {
        o.pd.kv_lease_ms = 1500;
        o.engine.engine.max_num_batched_tokens = 16;
      },
      512);
  auto decode_ptr = start_instance(model, "decode", "shm", {}, 512);
  ASSERT_TRUE(prefill_ptr && decode_ptr);
  Instance &prefill = *prefill_ptr, &decode = *decode_ptr;
  auto proxy = start_router(prefill, decode);
  ASSERT_TRUE(proxy);

  // During prefill.
  int fd = open_request(proxy->port(), completion_body(prompt_of(3000, 1), 8, true));
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(wait_until([&] { return counter(prefill, "baton:num_requests_running") >= 1; }, 20.0));
  ::close(fd);
  // Aborted (or, had it just finished, its lease expires): nothing stays pinned.
  EXPECT_TRUE(wait_until([&] { return counter(prefill, "baton:num_requests_running") == 0; }, 10.0));
  EXPECT_TRUE(pool_fully_free(prefill, 5.0));
  EXPECT_EQ(counter(prefill, "baton:kv_leases"), 0);

  // During decode.
  fd = open_request(proxy->port(), completion_body(prompt_of(30, 9), 4000, true));
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(wait_until([&] { return counter(decode, "baton:num_requests_running") >= 1; }, 20.0));
  ::close(fd);
  EXPECT_TRUE(wait_until([&] { return counter(decode, "baton:num_requests_running") == 0; }, 10.0));
  EXPECT_TRUE(pool_fully_free(decode));
  EXPECT_TRUE(pool_fully_free(prefill));
  EXPECT_EQ(counter(prefill, "baton:kv_leases"), 0);
}

// Each fault, on the whole-prompt handoff and mid-stream (streamed KV: the
// decode pulls while the prefill still computes, a few tokens a step).
class PdFaultsModeTest : public ::testing::TestWithParam<bool> {
 protected:
  bool streamed() const { return GetParam(); }
};

TEST_P(PdFaultsModeTest, FailedAndCorruptedTransfersUnderBothPolicies) {
  const std::string model = fixture_model(kModel);
  std::vector<std::unique_ptr<Instance>> p;
  p.push_back(start_instance(model, "agg"));
  p.push_back(
      start_instance(model, "prefill", "shm", [](InstanceOptions& o) { o.engine.engine.max_num_batched_tokens = 16; }));
  p.push_back(start_instance(model, "decode", "shm", fault("fail")));
  p.push_back(start_instance(model, "decode", "shm", fault("fail", false, "recompute")));
  p.push_back(start_instance(model, "decode", "shm", fault("corrupt", true)));
  p.push_back(start_instance(model, "decode", "shm", fault("corrupt", true, "recompute")));
  for (const auto& inst : p) ASSERT_TRUE(inst);
  Instance &agg = *p[0], &prefill = *p[1];
  const std::vector<int> prompt = prompt_of(37, 21);
  const std::vector<std::string> want = agg_tokens(agg, prompt);
  struct Case {
    Instance* decode;
    bool fails;
    const char* detail;
  } cases[] = {{p[2].get(), true, "UNAVAILABLE"},
               {p[3].get(), false, ""},
               {p[4].get(), true, "checksum"},
               {p[5].get(), false, ""}};
  for (const Case& c : cases) {
    for (bool stream : {false, true}) {
      std::unique_ptr<StreamedPrefill> sp = streamed() ? prefill_streamed(prefill, prompt) : nullptr;
      Completion r = decode_direct(*c.decode, prompt, sp ? sp->params : prefill_direct(prefill, prompt), stream);
      if (sp) {
        EXPECT_TRUE(sp->finish()) << sp->raw;
      }
      if (c.fails) {
        if (!stream) {
          EXPECT_EQ(r.http_status, 500) << r.raw;
        }
        EXPECT_NE(r.error.find("KV transfer failed"), std::string::npos) << r.raw;
        EXPECT_NE(r.error.find(c.detail), std::string::npos) << r.error;
        EXPECT_TRUE(r.tokens.empty());
        if (stream) {
          EXPECT_NE(r.raw.find("data: [DONE]"), std::string::npos) << r.raw;
        }
      } else {
        EXPECT_EQ(r.http_status, 200) << r.raw;
        EXPECT_EQ(r.tokens, want) << (stream ? "stream" : "");
      }
    }
    EXPECT_EQ(counter(*c.decode, "baton:kv_transfers_failed_total"), 2);
    EXPECT_TRUE(pool_fully_free(*c.decode));
  }
  // Every failed reader still said done: nothing waits for the lease.
  EXPECT_TRUE(wait_until([&] { return counter(prefill, "baton:kv_leases") == 0; }, 5.0));
  EXPECT_EQ(counter(prefill, "baton:kv_lease_expirations_total"), 0);
  EXPECT_TRUE(pool_fully_free(prefill));
}

INSTANTIATE_TEST_SUITE_P(WholeAndStreamed, PdFaultsModeTest, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "streamed" : "whole"); });

TEST(PdFaultsTest, DecodeThatNeverComesLetsTheLeaseExpire) {
  const std::string model = fixture_model(kModel);
  auto prefill_ptr = start_instance(model, "prefill", "shm", lease_ms(300));
  auto decode_ptr = start_instance(model, "decode", "shm");
  ASSERT_TRUE(prefill_ptr && decode_ptr);
  Instance &prefill = *prefill_ptr, &decode = *decode_ptr;
  const std::vector<int> prompt = prompt_of(50, 3);
  Json params = prefill_direct(prefill, prompt);
  EXPECT_EQ(params["remote_block_ids"].size(), 4u) << params.dump();
  EXPECT_EQ(counter(prefill, "baton:kv_blocks_pinned"), 4);
  EXPECT_EQ(counter(prefill, "baton:kv_leases"), 1);
  Stopwatch sw;
  EXPECT_TRUE(wait_until([&] { return counter(prefill, "baton:kv_lease_expirations_total") == 1; }, 5.0));
  EXPECT_LT(sw.elapsed_s(), 2.0);
  EXPECT_EQ(counter(prefill, "baton:kv_blocks_pinned"), 0);
  EXPECT_TRUE(pool_fully_free(prefill));
  // A decode arriving after the lease gets a clear error, not stale KV.
  Completion late = decode_direct(decode, prompt, params);
  EXPECT_EQ(late.http_status, 500) << late.raw;
  EXPECT_NE(late.error.find("lease"), std::string::npos) << late.error;
  EXPECT_TRUE(pool_fully_free(decode));
}

TEST(PdFaultsTest, SlowPullRenewsTheLease) {
  const std::string model = fixture_model(kModel);
  // The read takes 700 ms, the lease 300 ms: renewals keep it alive.
  auto agg_ptr = start_instance(model, "agg");
  auto prefill_ptr = start_instance(model, "prefill", "shm", lease_ms(300));
  auto decode_ptr = start_instance(model, "decode", "shm", fault("delay_ms=700"));
  ASSERT_TRUE(agg_ptr && prefill_ptr && decode_ptr);
  Instance &agg = *agg_ptr, &prefill = *prefill_ptr, &decode = *decode_ptr;
  const std::vector<int> prompt = prompt_of(33, 8);
  Completion r = decode_direct(decode, prompt, prefill_direct(prefill, prompt));
  EXPECT_EQ(r.http_status, 200) << r.raw;
  EXPECT_EQ(r.tokens, agg_tokens(agg, prompt));
  EXPECT_GE(counter(prefill, "baton:kv_lease_renewals_total"), 2);
  EXPECT_EQ(counter(prefill, "baton:kv_lease_expirations_total"), 0);
  EXPECT_EQ(counter(prefill, "baton:kv_leases_done_total"), 1);
  EXPECT_TRUE(pool_fully_free(prefill));
  EXPECT_TRUE(pool_fully_free(decode));
}

TEST(PdFaultsTest, IncompatiblePeerIsRefusedNamingTheMismatch) {
  auto other_model_ptr = start_instance(fixture_model("llama3-tiny"), "prefill", "tcp", lease_ms(500));
  auto other_layout_ptr = start_instance(fixture_model(kModel), "prefill", "tcp", [](InstanceOptions& o) {
    o.pd.kv_lease_ms = 500;
    o.engine.engine.block_size = 32;
  });
  auto decode_ptr = start_instance(fixture_model(kModel), "decode", "tcp");
  ASSERT_TRUE(other_model_ptr && other_layout_ptr && decode_ptr);
  Instance &other_model = *other_model_ptr, &other_layout = *other_layout_ptr, &decode = *decode_ptr;
  const std::vector<int> prompt = prompt_of(20, 2);
  Completion a = decode_direct(decode, prompt, prefill_direct(other_model, prompt));
  EXPECT_EQ(a.http_status, 500) << a.raw;
  EXPECT_NE(a.error.find("model"), std::string::npos) << a.error;
  Completion b = decode_direct(decode, prompt, prefill_direct(other_layout, prompt));
  EXPECT_EQ(b.http_status, 500) << b.raw;
  EXPECT_NE(b.error.find("block_size"), std::string::npos) << b.error;
  EXPECT_TRUE(pool_fully_free(decode));
  // The refused peers' leases run out; nothing stays pinned.
  EXPECT_TRUE(pool_fully_free(other_model, 5.0));
  EXPECT_TRUE(pool_fully_free(other_layout, 5.0));
  EXPECT_EQ(counter(other_model, "baton:kv_lease_expirations_total"), 1);
}

}  // namespace
}  // namespace baton::pd_test

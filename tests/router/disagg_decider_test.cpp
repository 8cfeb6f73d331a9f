#include "router/disagg_decider.h"

#include <gtest/gtest.h>

namespace baton::router {
namespace {

DisaggInputs prompt(int tokens, int cached_on_decode) {
  DisaggInputs in;
  in.prompt_known = true;
  in.prompt_tokens = tokens;
  in.decode_overlap_tokens = cached_on_decode;
  return in;
}

TEST(DisaggDecider, AlwaysIsRemote) {
  DisaggOptions o;
  EXPECT_FALSE(decide_prefill_place(o, prompt(10, 0)).local);
  EXPECT_STREQ(decide_prefill_place(o, prompt(10, 0)).reason, "always");
}

TEST(DisaggDecider, ConditionalFollowsTheUncachedLength) {
  DisaggOptions o;
  o.mode = DisaggMode::kConditional;
  o.max_local_prefill_tokens = 100;
  EXPECT_TRUE(decide_prefill_place(o, prompt(100, 0)).local);
  EXPECT_FALSE(decide_prefill_place(o, prompt(101, 0)).local);
  // Mostly cached on the decode instance: local.
  DisaggDecision d = decide_prefill_place(o, prompt(1000, 960));
  EXPECT_TRUE(d.local);
  EXPECT_EQ(d.uncached_tokens, 40);
  EXPECT_STREQ(d.reason, "short");
  EXPECT_STREQ(decide_prefill_place(o, prompt(1000, 0)).reason, "long");
  // Unknown prompts go remote.
  DisaggInputs unknown;
  EXPECT_FALSE(decide_prefill_place(o, unknown).local);
  EXPECT_STREQ(decide_prefill_place(o, unknown).reason, "untokenized");
}

TEST(DisaggDecider, ConditionalAvoidsABusyPrefillQueue) {
  DisaggOptions o;
  o.mode = DisaggMode::kConditional;
  o.max_local_prefill_tokens = 100;
  o.max_prefill_queue = 2;
  DisaggInputs in = prompt(1000, 0);
  in.prefill_synced = true;
  in.prefill_load.num_waiting = 2;
  EXPECT_FALSE(decide_prefill_place(o, in).local);
  in.prefill_load.num_waiting = 3;
  EXPECT_TRUE(decide_prefill_place(o, in).local);
  EXPECT_STREQ(decide_prefill_place(o, in).reason, "prefill_queue");
  // A queue the router has not heard of does not count.
  in.prefill_synced = false;
  EXPECT_FALSE(decide_prefill_place(o, in).local);
}

TEST(DisaggDecider, AutoWeighsLocalPrefillAgainstTheRemoteWait) {
  DisaggOptions o;
  o.mode = DisaggMode::kAuto;
  o.max_local_prefill_tokens = 0;
  o.hop_s = 0.02;
  DisaggInputs in = prompt(1000, 0);
  in.prefill_synced = in.decode_synced = true;
  in.decode_load.prefill_tokens_per_s = 10000;  // 1000 tokens: 0.1 s locally
  in.prefill_load.prefill_tokens_per_s = 10000;
  in.prefill_load.waiting_prompt_tokens = 0;  // remote wait 0.02 s
  EXPECT_FALSE(decide_prefill_place(o, in).local);
  EXPECT_STREQ(decide_prefill_place(o, in).reason, "auto_remote");
  in.prefill_load.waiting_prompt_tokens = 1000;  // remote wait 0.12 s
  EXPECT_TRUE(decide_prefill_place(o, in).local);
  EXPECT_STREQ(decide_prefill_place(o, in).reason, "auto_local");
  // 200 tokens take 0.02 s locally: no slower than the hop itself.
  in.prefill_load.waiting_prompt_tokens = 0;
  EXPECT_TRUE(decide_prefill_place(o, prompt(200, 0)).local == false);  // unmeasured inputs: the threshold (0) rules
  DisaggInputs short_in = in;
  short_in.prompt_tokens = 200;
  EXPECT_TRUE(decide_prefill_place(o, short_in).local);
  // Nothing measured yet: the conditional rule.
  in.decode_load.prefill_tokens_per_s = 0;
  EXPECT_STREQ(decide_prefill_place(o, in).reason, "long");
}

TEST(DisaggDecider, ParsesModes) {
  EXPECT_EQ(parse_disagg_mode("auto").value(), DisaggMode::kAuto);
  EXPECT_EQ(parse_disagg_mode("conditional").value(), DisaggMode::kConditional);
  EXPECT_FALSE(parse_disagg_mode("sometimes").is_ok());
}

}  // namespace
}  // namespace baton::router

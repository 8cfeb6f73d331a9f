// The scheduler's semantics (vLLM V1), without a model: the test plays the
// backend by advancing requests after each step.
#include "engine/scheduler.h"

#include <memory>
#include <numeric>

#include <gtest/gtest.h>

namespace baton {
namespace {

class SchedulerTest : public ::testing::Test {
 protected:
  void make(int num_blocks, int block_size, int budget, int max_seqs = 256) {
    kv_ = std::make_unique<KvCacheManager>(num_blocks, block_size, true);
    sched_ = std::make_unique<Scheduler>(SchedulerConfig{budget, max_seqs}, kv_.get());
  }
  Request* add(const std::string& id, int prompt_len, int max_tokens = 100, int first_token = 1) {
    GenerationRequest g;
    g.request_id = id;
    g.prompt_ids.resize(static_cast<size_t>(prompt_len));
    std::iota(g.prompt_ids.begin(), g.prompt_ids.end(), first_token);
    g.max_tokens = max_tokens;
    requests_.push_back(std::make_unique<Request>(next_key_++, g, 0, 0.0));
    sched_->add_request(requests_.back().get());
    return requests_.back().get();
  }
  // Plays the backend: computed tokens advance, samplers get token 7.
  void run(const SchedulerOutput& out) {
    sched_->update_after_step(out);
    for (const ScheduledSeq& s : out.seqs) {
      if (s.samples) {
        s.request->all_token_ids.push_back(7);
        s.request->output_ids.push_back(7);
      }
    }
  }
  static int tokens_of(const SchedulerOutput& out, const Request* r) {
    for (const ScheduledSeq& s : out.seqs) {
      if (s.request == r) return s.num_new_tokens;
    }
    return 0;
  }

  std::unique_ptr<KvCacheManager> kv_;
  std::unique_ptr<Scheduler> sched_;
  std::vector<std::unique_ptr<Request>> requests_;
  uint64_t next_key_ = 1;
};

TEST_F(SchedulerTest, RequestsLoadingRemoteKvCountAgainstMaxNumSeqs) {
  // A PD decode instance admits requests whose KV is still being pulled;
  // once the pulls end they run, and never more than max_num_seqs of them.
  make(100, 4, /*budget=*/64, /*max_seqs=*/2);
  std::vector<Request*> rs;
  for (const char* id : {"a", "b", "c"}) {
    rs.push_back(add(id, 8));
    rs.back()->remote_kv = RemoteKvState::kPending;
  }
  SchedulerOutput out = sched_->schedule();
  ASSERT_EQ(out.remote_loads.size(), 2u);  // c waits for a sequence slot
  EXPECT_EQ(sched_->num_loading(), 2);
  EXPECT_EQ(sched_->num_waiting(), 1);
  run(out);
  EXPECT_TRUE(sched_->schedule().remote_loads.empty());  // still full while a and b load
  for (Request* r : out.remote_loads) sched_->resume_after_load(r);
  EXPECT_EQ(sched_->num_running(), 2);
  EXPECT_TRUE(sched_->schedule().remote_loads.empty());
  EXPECT_LE(sched_->num_running() + sched_->num_loading(), 2);
}

TEST_F(SchedulerTest, BudgetGoesToDecodesFirstThenAChunkOfTheNextPrompt) {
  make(100, 4, /*budget=*/10);
  Request* a = add("a", 3);
  Request* b = add("b", 3);
  run(sched_->schedule());  // both prompts fit: 6 tokens
  Request* c = add("c", 20);
  SchedulerOutput out = sched_->schedule();
  // a and b decode one token each; c gets the remaining 8 as a chunk.
  EXPECT_EQ(tokens_of(out, a), 1);
  EXPECT_EQ(tokens_of(out, b), 1);
  EXPECT_EQ(tokens_of(out, c), 8);
  EXPECT_EQ(out.num_decode_tokens, 2);
  EXPECT_EQ(out.num_prefill_tokens, 8);
  EXPECT_EQ(out.num_scheduled_tokens, 10);
  EXPECT_FALSE(out.seqs[2].samples);  // c's prompt is not done
  run(out);
  // Next step: c continues its prefill as a running request, after the decodes.
  out = sched_->schedule();
  EXPECT_EQ(out.seqs[2].request, c);
  EXPECT_EQ(tokens_of(out, c), 8);
  run(out);
  out = sched_->schedule();
  EXPECT_EQ(tokens_of(out, c), 4);
  EXPECT_TRUE(out.seqs[2].samples);
}

TEST_F(SchedulerTest, LongPromptIsChunkedToTheBudget) {
  make(100, 4, /*budget=*/8);
  Request* a = add("a", 30);
  std::vector<int> chunks;
  while (a->num_output_tokens() == 0) {
    SchedulerOutput out = sched_->schedule();
    chunks.push_back(tokens_of(out, a));
    run(out);
  }
  EXPECT_EQ(chunks, (std::vector<int>{8, 8, 8, 6}));
}

TEST_F(SchedulerTest, WaitingRequestsAreAdmittedInArrivalOrder) {
  make(100, 4, /*budget=*/10);
  Request* a = add("a", 6);
  Request* b = add("b", 6);
  Request* c = add("c", 2);
  SchedulerOutput out = sched_->schedule();
  // a fully, b chunked to the rest of the budget; c (short) does not jump ahead.
  ASSERT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(out.seqs[0].request, a);
  EXPECT_EQ(out.seqs[1].request, b);
  EXPECT_EQ(tokens_of(out, b), 4);
  EXPECT_EQ(tokens_of(out, c), 0);
  EXPECT_EQ(sched_->num_waiting(), 1);
}

TEST_F(SchedulerTest, MaxNumSeqsCapsRunningRequests) {
  make(100, 4, 100, /*max_seqs=*/2);
  add("a", 3);
  add("b", 3);
  add("c", 3);
  SchedulerOutput out = sched_->schedule();
  EXPECT_EQ(out.seqs.size(), 2u);
  EXPECT_EQ(sched_->num_running(), 2);
  EXPECT_EQ(sched_->num_waiting(), 1);
}

TEST_F(SchedulerTest, AHeadOfLineRequestThatDoesNotFitBlocksLaterOnes) {
  make(4, 4, 100);
  add("a", 12);              // 3 blocks
  Request* b = add("b", 8);  // 2 blocks: does not fit beside a
  Request* c = add("c", 2);  // 1 block would fit, but arrival order holds
  SchedulerOutput out = sched_->schedule();
  EXPECT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(tokens_of(out, b), 0);
  EXPECT_EQ(tokens_of(out, c), 0);
}

TEST_F(SchedulerTest, OutOfBlocksPreemptsTheNewestRunningRequest) {
  make(4, 4, 100);
  Request* a = add("a", 4, 100, 1);
  Request* b = add("b", 4, 100, 100);
  run(sched_->schedule());  // a: block 1, b: block 1 (both full after their prompts)
  run(sched_->schedule());  // decode: each needs a second block -> 4 blocks used
  EXPECT_EQ(kv_->num_free_blocks(), 0);
  // Positions 5..7 still fit in their second block: no preemption yet.
  for (int i = 0; i < 3; ++i) {
    SchedulerOutput o = sched_->schedule();
    EXPECT_TRUE(o.preempted.empty());
    run(o);
  }
  // Now each needs a third block; none free: b (newest) is preempted.
  SchedulerOutput out = sched_->schedule();
  ASSERT_EQ(out.preempted.size(), 1u);
  EXPECT_EQ(out.preempted[0], b);
  EXPECT_EQ(b->status, RequestStatus::kPreempted);
  EXPECT_EQ(b->num_computed_tokens, 0);
  EXPECT_EQ(sched_->waiting().front(), b);
  EXPECT_EQ(tokens_of(out, a), 1);
  EXPECT_EQ(tokens_of(out, b), 0);
  EXPECT_EQ(sched_->num_preemptions(), 1);
  run(out);
  // A preempted request comes back first, recomputing prompt + output so far.
  sched_->finish_request(a);
  out = sched_->schedule();
  ASSERT_EQ(out.seqs.size(), 1u);
  EXPECT_EQ(out.seqs[0].request, b);
  EXPECT_EQ(out.seqs[0].num_new_tokens + b->num_computed_tokens, b->num_tokens());
  EXPECT_TRUE(out.seqs[0].samples);
  EXPECT_EQ(b->status, RequestStatus::kRunning);
}

TEST_F(SchedulerTest, NoAdmissionInAStepThatPreempted) {
  make(4, 4, 100);
  add("a", 8, 100, 1);
  Request* b = add("b", 8, 100, 100);
  run(sched_->schedule());
  Request* c = add("c", 1, 100, 500);
  SchedulerOutput out = sched_->schedule();  // a needs a 3rd block: b preempted
  ASSERT_EQ(out.preempted.size(), 1u);
  EXPECT_EQ(out.preempted[0], b);
  EXPECT_EQ(tokens_of(out, c), 0);
  EXPECT_EQ(sched_->waiting().front(), b);
  EXPECT_EQ(sched_->waiting().back(), c);
}

TEST_F(SchedulerTest, FinishingFreesBlocksAtOnce) {
  make(8, 4, 100);
  Request* a = add("a", 10);
  Request* b = add("b", 10);
  SchedulerOutput out = sched_->schedule();
  run(out);
  EXPECT_EQ(kv_->num_free_blocks(), 2);
  sched_->finish_request(a);
  EXPECT_EQ(kv_->num_free_blocks(), 5);
  sched_->finish_request(b);
  EXPECT_EQ(kv_->num_free_blocks(), 8);
  EXPECT_FALSE(sched_->has_requests());
}

}  // namespace
}  // namespace baton

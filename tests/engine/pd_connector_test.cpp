// The engine's side of the PD handoff (engine/kv_connector.h), in process:
// a prefill EngineCore and a decode EngineCore over a slot-recording backend
// (like FakeBackend: sampling reads the whole context back from the KV slots
// and fails on a missing position), joined by an in-memory connector that
// copies blocks between the two backends. Shows that the decode side samples
// exactly what an agg engine would after computing only the last prompt
// token, that a loading request waits off the batch, that the failure
// policies act, and that leases and aborted pulls give every block back.
#include <gtest/gtest.h>

#include "engine/engine_test_util.h"
#include "engine/kv_connector.h"

namespace baton::testing {
namespace {

// FakeBackend's model with its slots public, so the connector can copy them.
class SlotBackend : public Backend {
 public:
  const ModelConfig& model_config() const override { return cfg_; }
  std::string device_name() const override { return "slots"; }
  size_t kv_block_bytes(int block_size) const override { return static_cast<size_t>(block_size) * 8; }
  Status init_kv_cache(int num_blocks, int block_size) override {
    block_size_ = block_size;
    token.assign(static_cast<size_t>(num_blocks) * block_size, -1);
    pos.assign(token.size(), -1);
    return Status::ok();
  }
  KvMemory kv_memory() override { return {}; }
  Result<StepOutput> execute(const StepInput& in) override {
    num_tokens_computed += in.num_tokens();
    for (int t = 0; t < in.num_tokens(); ++t) {
      token[in.slot_mapping[t]] = in.token_ids[t];
      pos[in.slot_mapping[t]] = in.positions[t];
    }
    StepOutput out;
    for (const SampleRequest& s : in.samples) {
      std::vector<int32_t> context;
      for (int p = 0; p < in.seq_lens[s.seq_index]; ++p) {
        const int block = in.block_tables[static_cast<size_t>(s.seq_index) * in.max_blocks_per_seq + p / block_size_];
        const int64_t slot = static_cast<int64_t>(block) * block_size_ + p % block_size_;
        if (pos[slot] != p) return internal_error("KV of position {} missing", p);
        context.push_back(token[slot]);
      }
      SampleResult r;
      r.token_id = fake_next_token(context, *s.params, s.seed, s.num_output_tokens, cfg_.vocab_size);
      out.samples.push_back(r);
    }
    return out;
  }
  // Copies whole blocks from another backend.
  void copy_blocks(const SlotBackend& from, const std::vector<int>& src, const std::vector<int>& dst) {
    for (size_t i = 0; i < src.size(); ++i) {
      for (int o = 0; o < block_size_; ++o) {
        token[dst[i] * block_size_ + o] = from.token[src[i] * block_size_ + o];
        pos[dst[i] * block_size_ + o] = from.pos[src[i] * block_size_ + o];
      }
    }
  }

  std::vector<int32_t> token, pos;
  int64_t num_tokens_computed = 0;

 private:
  ModelConfig cfg_ = fake_model_config();
  int block_size_ = 4;
};

// One per engine: the prefill's holds leases, the decode's runs pulls
// (completed when the test says) and ends the prefill's leases.
class LoopbackConnector : public KvConnector {
 public:
  LoopbackConnector(SlotBackend* prefill, SlotBackend* decode, KvLoadFailurePolicy policy,
                    LoopbackConnector* prefill_side = nullptr)
      : prefill_(prefill), decode_(decode), policy_(policy), prefill_side_(prefill_side) {}

  void set_wakeup(std::function<void()>) override {}
  bool has_events() const override { return !done_.empty() || !release_.empty(); }
  bool has_timers() const override { return !leases_.empty(); }
  Json on_prefill_finished(const std::string& id, int num_prompt_tokens, std::vector<int> blocks) override {
    leases_[id] = blocks;
    return {{"do_remote_prefill", true},
            {"remote_request_id", id},
            {"remote_block_ids", blocks},
            {"remote_num_tokens", num_prompt_tokens}};
  }
  Status start_load(const KvLoadRequest& load) override {
    loads_[load.request_id] = load;
    return Status::ok();
  }
  void cancel_load(const std::string& id, std::vector<int> blocks) override {
    loads_.erase(id);
    cancelled_blocks_[id] = std::move(blocks);  // given back by finish_cancelled()
  }
  KvLoadFailurePolicy load_failure_policy() const override { return policy_; }
  KvConnectorEvents poll() override {
    KvConnectorEvents ev;
    ev.loads_done.swap(done_);
    ev.blocks_to_release.swap(release_);
    return ev;
  }

  // Completes a pull: copies the blocks the decode side lacks, then "done".
  void complete(const std::string& id, Status status = Status::ok()) {
    KvLoadRequest load = loads_.at(id);
    loads_.erase(id);
    const std::string remote = load.kv_transfer_params["remote_request_id"];
    std::vector<int> remote_blocks = load.kv_transfer_params["remote_block_ids"];
    const int first = load.num_local_tokens / 4, end = (load.num_tokens_to_load + 3) / 4;
    if (status.is_ok()) {
      decode_->copy_blocks(*prefill_, std::vector<int>(remote_blocks.begin() + first, remote_blocks.begin() + end),
                           std::vector<int>(load.local_block_ids.begin() + first, load.local_block_ids.begin() + end));
      num_blocks_pulled += end - first;
    }
    prefill_side_->release_.push_back(prefill_side_->leases_.at(remote));
    prefill_side_->leases_.erase(remote);
    done_.push_back({id, std::move(status)});
  }
  void finish_cancelled(const std::string& id) {
    release_.push_back(cancelled_blocks_.at(id));
    cancelled_blocks_.erase(id);
  }

  std::map<std::string, std::vector<int>> leases_;
  std::map<std::string, KvLoadRequest> loads_;
  std::map<std::string, std::vector<int>> cancelled_blocks_;
  int num_blocks_pulled = 0;

 private:
  SlotBackend* prefill_;
  SlotBackend* decode_;
  KvLoadFailurePolicy policy_;
  LoopbackConnector* prefill_side_;
  std::vector<KvLoadResult> done_;
  std::vector<std::vector<int>> release_;
};

struct Pair {
  SlotBackend* prefill_backend;
  SlotBackend* decode_backend;
  std::unique_ptr<EngineCore> prefill, decode;
  std::shared_ptr<LoopbackConnector> prefill_connector, connector;  // connector: the decode's
};

Pair make_pair(KvLoadFailurePolicy policy = KvLoadFailurePolicy::kFail) {
  EngineOptions o;
  o.block_size = 4;
  o.num_kv_blocks = 32;
  Pair p;
  auto pb = std::make_unique<SlotBackend>();
  auto db = std::make_unique<SlotBackend>();
  p.prefill_backend = pb.get();
  p.decode_backend = db.get();
  p.prefill = std::move(EngineCore::create(std::move(pb), nullptr, o)).value();
  p.decode = std::move(EngineCore::create(std::move(db), nullptr, o)).value();
  p.prefill_connector = std::make_shared<LoopbackConnector>(p.prefill_backend, p.decode_backend, policy);
  p.connector = std::make_shared<LoopbackConnector>(p.prefill_backend, p.decode_backend, policy,
                                                    p.prefill_connector.get());
  p.prefill->set_kv_connector(p.prefill_connector);
  p.decode->set_kv_connector(p.connector);
  return p;
}

// Runs the prefill half; returns the final output's kv_transfer_params.
Json run_prefill(Pair& p, const std::string& id, const std::vector<int32_t>& prompt) {
  GenerationRequest g = gen(id, prompt, 1);
  g.sampling = greedy_params();
  g.kv_transfer_params = {{"do_remote_decode", true}};
  EXPECT_TRUE(p.prefill->add_request(g).is_ok());
  Json params;
  for (int i = 0; i < 100 && p.prefill->has_unfinished_requests(); ++i) {
    for (RequestOutput& o : p.prefill->step()) {
      if (o.finished) params = o.kv_transfer_params;
    }
  }
  return params;
}

GenerationRequest decode_request(const std::string& id, const std::vector<int32_t>& prompt, int max_tokens,
                                 const Json& params) {
  GenerationRequest g = gen(id, prompt, max_tokens);
  g.sampling = greedy_params();
  g.kv_transfer_params = params;
  return g;
}

TEST(PdConnectorTest, DecodeSamplesWhatAggWouldAfterComputingOnlyTheLastPromptToken) {
  Pair p = make_pair();
  const std::vector<int32_t> prompt = tokens(10, 40);  // 3 blocks of 4
  Json params = run_prefill(p, "r", prompt);
  ASSERT_TRUE(params.is_object());
  EXPECT_EQ(params["remote_block_ids"].size(), 3u);
  // The prefill's blocks are pinned under the lease, published to its cache.
  EXPECT_EQ(p.prefill->kv_counters().num_blocks_free, 32 - 3);

  ASSERT_TRUE(p.decode->add_request(decode_request("d", prompt, 5, params)).is_ok());
  EXPECT_TRUE(p.decode->step().empty());  // admitted: blocks allocated, pull started
  ASSERT_EQ(p.connector->loads_.count("d"), 1u);
  EXPECT_EQ(p.connector->loads_["d"].num_tokens_to_load, 9);
  EXPECT_EQ(p.decode->num_running(), 0);
  EXPECT_TRUE(p.decode->has_unfinished_requests());
  EXPECT_FALSE(p.decode->needs_step());  // waiting on the pull costs no steps
  // Another request is not blocked by the one waiting for KV.
  GenerationRequest other = gen("o", tokens(5, 300), 2);
  other.sampling = greedy_params();
  ASSERT_TRUE(p.decode->add_request(other).is_ok());
  std::map<std::string, Collected> early;
  for (int i = 0; i < 50 && !early["o"].finished; ++i) collect(early, p.decode->step());
  EXPECT_TRUE(early["o"].finished);
  EXPECT_FALSE(early["d"].finished);
  EXPECT_FALSE(p.decode->needs_step());
  const int64_t computed_before = p.decode_backend->num_tokens_computed;

  p.connector->complete("d");
  EXPECT_TRUE(p.decode->needs_step());
  std::map<std::string, Collected> out;
  for (int i = 0; i < 50 && p.decode->has_unfinished_requests(); ++i) collect(out, p.decode->step());
  ASSERT_TRUE(out["d"].finished);
  EXPECT_EQ(out["d"].error, "");
  EXPECT_EQ(out["d"].ids, fake_reference(prompt, 5));
  // One prompt token (the last) and four decode tokens were computed here.
  EXPECT_EQ(p.decode_backend->num_tokens_computed - computed_before, 1 + 4);
  EXPECT_EQ(p.connector->num_blocks_pulled, 3);
  // Both pools are fully free again (the done released the lease).
  p.prefill->step();
  EXPECT_EQ(p.prefill->kv_counters().num_blocks_free, 32);
  EXPECT_EQ(p.decode->kv_counters().num_blocks_free, 32);
}

TEST(PdConnectorTest, LocalPrefixHitShrinksThePull) {
  Pair p = make_pair();
  const std::vector<int32_t> prompt = tokens(13, 7);  // 12 tokens to load: 3 blocks
  for (const char* id : {"a", "b"}) {
    Json params = run_prefill(p, std::string("p") + id, prompt);
    ASSERT_TRUE(p.decode->add_request(decode_request(id, prompt, 3, params)).is_ok());
    p.decode->step();
    p.connector->complete(id);
    auto out = run_to_completion(*p.decode, 50);
    EXPECT_EQ(out[id].ids, fake_reference(prompt, 3));
  }
  EXPECT_EQ(p.connector->num_blocks_pulled, 3 + 0);  // the second found all 3 locally
}

TEST(PdConnectorTest, FailedPullFailsOrRecomputesByPolicy) {
  for (KvLoadFailurePolicy policy : {KvLoadFailurePolicy::kFail, KvLoadFailurePolicy::kRecompute}) {
    Pair p = make_pair(policy);
    const std::vector<int32_t> prompt = tokens(9, 100);
    Json params = run_prefill(p, "p", prompt);
    ASSERT_TRUE(p.decode->add_request(decode_request("d", prompt, 3, params)).is_ok());
    p.decode->step();
    p.connector->complete("d", unavailable("peer gone"));
    auto out = run_to_completion(*p.decode, 50);
    ASSERT_TRUE(out["d"].finished);
    if (policy == KvLoadFailurePolicy::kFail) {
      EXPECT_NE(out["d"].error.find("KV transfer failed: UNAVAILABLE: peer gone"), std::string::npos) << out["d"].error;
      EXPECT_TRUE(out["d"].ids.empty());
    } else {
      EXPECT_EQ(out["d"].error, "");
      EXPECT_EQ(out["d"].ids, fake_reference(prompt, 3));
      EXPECT_EQ(p.decode_backend->num_tokens_computed, 9 + 2);  // the whole prompt, locally
    }
    EXPECT_EQ(p.decode->kv_counters().num_blocks_free, 32);
  }
}

TEST(PdConnectorTest, AbortWhileLoadingKeepsBlocksUntilThePullStops) {
  Pair p = make_pair();
  const std::vector<int32_t> prompt = tokens(10, 1);
  Json params = run_prefill(p, "p", prompt);
  ASSERT_TRUE(p.decode->add_request(decode_request("d", prompt, 3, params)).is_ok());
  p.decode->step();
  const int free_while_loading = p.decode->kv_counters().num_blocks_free;
  EXPECT_EQ(free_while_loading, 32 - 3);
  auto aborted = p.decode->abort_request("d");
  ASSERT_TRUE(aborted.has_value());
  EXPECT_EQ(aborted->finish_reason, FinishReason::kAbort);
  EXPECT_FALSE(p.decode->has_unfinished_requests());
  // A pull may still write into them: not free yet.
  EXPECT_EQ(p.decode->kv_counters().num_blocks_free, free_while_loading);
  p.connector->finish_cancelled("d");
  p.decode->step();
  EXPECT_EQ(p.decode->kv_counters().num_blocks_free, 32);
}

TEST(PdConnectorTest, AbortedOrPlainRequestsPinNothing) {
  Pair p = make_pair();
  GenerationRequest g = gen("x", tokens(10, 5), 4);
  g.kv_transfer_params = {{"do_remote_decode", true}};
  ASSERT_TRUE(p.prefill->add_request(g).is_ok());
  p.prefill->step();
  ASSERT_TRUE(p.prefill->abort_request("x").has_value());
  ASSERT_TRUE(p.prefill->add_request(gen("plain", tokens(10, 5), 1)).is_ok());
  run_to_completion(*p.prefill, 50);
  EXPECT_TRUE(p.prefill_connector->leases_.empty());
  EXPECT_EQ(p.prefill->kv_counters().num_blocks_free, 32);
}

}  // namespace
}  // namespace baton::testing

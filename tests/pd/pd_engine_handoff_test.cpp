// The whole handoff in one process: a prefill EngineCore and a decode
// EngineCore, each over a backend whose KV cache is real bytes laid out by
// KvLayout (FakeBackend's model: a slot holds the token and position written
// there, sampling reads the context back and fails on a missing position),
// joined by the real PrefillKvConnector and DecodeKvConnector over the local
// transport. The decode samples what an agg engine would after computing only
// the last prompt token; when the pull fails (a fault-injecting transport)
// the recompute policy prefills locally and still samples the same tokens,
// and the fail policy fails the request naming the fault. With streamed KV
// the prefill's params come out before its prompt is done and the decode
// pulls between its chunks; a decode request aborted before its pull ends
// the prefill's lease at once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>

#include "engine/engine_core.h"
#include "engine/engine_test_util.h"
#include "pd/pd_connector_fixture.h"

namespace baton::testing {
namespace {

constexpr int kBlockSize = 4;
constexpr int kNumBlocks = 32;

// FakeBackend's model over a byte KV cache: K holds the token, V the position.
class KvBytesBackend : public Backend {
 public:
  KvBytesBackend() {
    layout_.num_layers = 1;
    layout_.num_kv_heads = 1;
    layout_.head_dim = 1;
    layout_.dtype = DType::kF32;
  }
  const ModelConfig& model_config() const override { return cfg_; }
  std::string device_name() const override { return "kv-bytes"; }
  size_t kv_block_bytes(int block_size) const override {
    KvLayout l = layout_;
    l.block_size = block_size;
    return l.block_bytes();
  }
  Status init_kv_cache(int num_blocks, int block_size) override {
    layout_.block_size = block_size;
    layout_.num_blocks = num_blocks;
    bytes_.assign(layout_.total_bytes(), 0xff);  // position -1 everywhere
    return Status::ok();
  }
  KvMemory kv_memory() override { return {.base = bytes_.data(), .layout = layout_}; }
  Result<StepOutput> execute(const StepInput& in) override {
    num_tokens_computed += in.num_tokens();
    for (int t = 0; t < in.num_tokens(); ++t) {
      set(in.slot_mapping[t], 0, in.token_ids[t]);
      set(in.slot_mapping[t], 1, in.positions[t]);
    }
    StepOutput out;
    for (const SampleRequest& s : in.samples) {
      std::vector<int32_t> context;
      for (int p = 0; p < in.seq_lens[s.seq_index]; ++p) {
        const int block = in.block_tables[static_cast<size_t>(s.seq_index) * in.max_blocks_per_seq + p / kBlockSize];
        const int64_t slot = static_cast<int64_t>(block) * kBlockSize + p % kBlockSize;
        if (get(slot, 1) != p) return internal_error("KV of position {} missing", p);
        context.push_back(get(slot, 0));
      }
      SampleResult r;
      r.token_id = fake_next_token(context, *s.params, s.seed, s.num_output_tokens, cfg_.vocab_size);
      out.samples.push_back(r);
    }
    return out;
  }

  int64_t num_tokens_computed = 0;
  // Slots holding a position (written by a step or by a pull). Any thread.
  int num_slots_written() {
    int n = 0;
    for (int64_t slot = 0; slot < static_cast<int64_t>(layout_.num_blocks) * layout_.block_size; ++slot) {
      if (std::atomic_ref<int32_t>(*at(slot, 1)).load() != -1) ++n;
    }
    return n;
  }

 private:
  int32_t* at(int64_t slot, int kv) {
    const int64_t elem = layout_.offset(slot / layout_.block_size, 0, kv, static_cast<int>(slot % layout_.block_size));
    return reinterpret_cast<int32_t*>(bytes_.data()) + elem;
  }
  void set(int64_t slot, int kv, int32_t v) { *at(slot, kv) = v; }
  int32_t get(int64_t slot, int kv) { return *at(slot, kv); }

  ModelConfig cfg_ = fake_model_config();
  KvLayout layout_;
  std::vector<uint8_t> bytes_;
};

struct Instance {
  KvBytesBackend* backend = nullptr;
  std::unique_ptr<EngineCore> engine;
  std::shared_ptr<PdKvConnector> connector;
};

Instance make_instance(PdConnectorOptions options, std::unique_ptr<Transport> transport = nullptr,
                       int max_num_batched_tokens = 0) {
  EngineOptions o;
  o.block_size = kBlockSize;
  o.num_kv_blocks = kNumBlocks;
  if (max_num_batched_tokens > 0) o.max_num_batched_tokens = max_num_batched_tokens;
  Instance in;
  auto backend = std::make_unique<KvBytesBackend>();
  in.backend = backend.get();
  in.engine = std::move(EngineCore::create(std::move(backend), nullptr, o)).value();
  auto c = create_pd_connector(in.backend->kv_memory(), std::move(options), std::move(transport));
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  if (c.is_ok()) in.connector = *c;
  in.engine->set_kv_connector(in.connector);
  return in;
}

// Steps `in` until its requests finish, waiting on its connector's events
// while a pull runs (10 s at most).
std::map<std::string, Collected> drive(Instance& in) {
  std::mutex mu;
  std::condition_variable cv;
  in.connector->set_wakeup([&] {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  });
  std::map<std::string, Collected> all;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (in.engine->has_unfinished_requests() && std::chrono::steady_clock::now() < deadline) {
    std::vector<RequestOutput> outs = in.engine->step();
    if (outs.empty()) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)),
                    [&] { return in.connector->has_events(); });
    }
    collect(all, std::move(outs));
  }
  in.connector->set_wakeup(nullptr);
  EXPECT_FALSE(in.engine->has_unfinished_requests());
  return all;
}

class PdEngineHandoff : public ::testing::Test {
 protected:
  void SetUp() override { prefill_ = make_instance(pd_options(PdRole::kPrefill, "prefill-e", clock_)); }
  void TearDown() override { prefill_.connector->stop(); }

  FakeClock clock_;
  Instance prefill_;
};

// The prefill half of `prompt`: the kv_transfer_params of its final output
// (collect() drops them, so it is stepped by hand).
Json run_prefill(Instance& prefill, const std::string& id, const std::vector<int32_t>& prompt) {
  GenerationRequest g = gen(id, prompt, 1);
  g.kv_transfer_params = {{"do_remote_decode", true}};
  EXPECT_TRUE(prefill.engine->add_request(g).is_ok());
  Json params;
  for (int i = 0; i < 100 && prefill.engine->has_unfinished_requests(); ++i) {
    for (RequestOutput& o : prefill.engine->step()) {
      if (o.finished) params = o.kv_transfer_params;
    }
  }
  return params;
}

GenerationRequest decode_request(const std::string& id, const std::vector<int32_t>& prompt, const Json& params) {
  GenerationRequest g = gen(id, prompt, 6);
  g.kv_transfer_params = params;
  return g;
}

TEST_F(PdEngineHandoff, DecodeSamplesWhatAggWouldAfterComputingOnlyTheLastToken) {
  Instance decode = make_instance(pd_options(PdRole::kDecode, "decode-e", clock_));
  const std::vector<int32_t> prompt = tokens(13, 100);
  const Json params = run_prefill(prefill_, "p-1", prompt);
  ASSERT_TRUE(params.contains("lease_token")) << params.dump();
  ASSERT_TRUE(decode.engine->add_request(decode_request("d-1", prompt, params)).is_ok());
  auto out = drive(decode);
  EXPECT_EQ(out["d-1"].ids, fake_reference(prompt, 6));
  EXPECT_EQ(out["d-1"].error, "");
  // The 12 pulled tokens were not computed: 1 prompt token + 5 decode steps.
  EXPECT_EQ(decode.backend->num_tokens_computed, 6);
  EXPECT_EQ(decode.connector->stats().num_blocks_received, 3);
  // The prefill got its "done": the lease's blocks went back to its engine.
  drive(prefill_);
  EXPECT_EQ(prefill_.connector->stats().num_leases_done, 1);
  EXPECT_EQ(prefill_.connector->stats().num_blocks_pinned, 0);
  decode.connector->stop();
}

TEST_F(PdEngineHandoff, FailedPullRecomputesOrFailsByPolicy) {
  const std::vector<int32_t> prompt = tokens(13, 300);
  for (KvLoadFailurePolicy policy : {KvLoadFailurePolicy::kRecompute, KvLoadFailurePolicy::kFail}) {
    FaultSpec spec;
    spec.kind = FaultKind::kFail;
    auto fault = std::make_unique<FaultTransport>(std::make_unique<LocalTransport>(), spec);
    PdConnectorOptions o = pd_options(PdRole::kDecode, "decode-f", clock_);
    o.failure_policy = policy;
    Instance decode = make_instance(o, std::move(fault));
    const std::string id = policy == KvLoadFailurePolicy::kRecompute ? "recompute" : "fail";
    const Json params = run_prefill(prefill_, "p-" + id, prompt);
    ASSERT_TRUE(decode.engine->add_request(decode_request(id, prompt, params)).is_ok());
    auto out = drive(decode);
    if (policy == KvLoadFailurePolicy::kRecompute) {
      EXPECT_EQ(out[id].ids, fake_reference(prompt, 6));
      EXPECT_EQ(decode.backend->num_tokens_computed, 13 + 5);  // the whole prompt, locally
    } else {
      EXPECT_TRUE(out[id].ids.empty());
      EXPECT_NE(out[id].error.find("injected fault"), std::string::npos) << out[id].error;
    }
    EXPECT_EQ(decode.connector->stats().num_loads_failed, 1);
    decode.connector->stop();
  }
}

TEST_F(PdEngineHandoff, StreamedPrefillSendsItsParamsFirstAndTheDecodePullsBetweenChunks) {
  // Chunks of 4 tokens: a 17-token prompt takes 5 prefill steps.
  Instance prefill = make_instance(pd_options(PdRole::kPrefill, "prefill-s", clock_), nullptr, 4);
  Instance decode = make_instance(pd_options(PdRole::kDecode, "decode-s", clock_));
  const std::vector<int32_t> prompt = tokens(17, 500);
  GenerationRequest g = gen("p-s", prompt, 1);
  g.kv_transfer_params = {{"do_remote_decode", true}, {"stream_kv", true}};
  ASSERT_TRUE(prefill.engine->add_request(g).is_ok());
  Json params;
  for (RequestOutput& o : prefill.engine->step()) {
    EXPECT_FALSE(o.finished);
    params = o.kv_transfer_params;
  }
  ASSERT_TRUE(params.value("stream_kv", false)) << params.dump();
  ASSERT_TRUE(decode.engine->add_request(decode_request("d-s", prompt, params)).is_ok());
  std::map<std::string, Collected> out;
  collect(out, decode.engine->step());  // admits it: the pull starts
  prefill.engine->step();
  prefill.engine->step();
  // 12 of 17 prompt tokens computed: their 3 blocks arrive while the rest waits.
  EXPECT_TRUE(prefill.engine->has_unfinished_requests());
  EXPECT_TRUE(wait_until([&] { return decode.backend->num_slots_written() >= 12; }));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (decode.engine->has_unfinished_requests() && std::chrono::steady_clock::now() < deadline) {
    if (prefill.engine->has_unfinished_requests()) prefill.engine->step();
    collect(out, decode.engine->step());
  }
  EXPECT_EQ(out["d-s"].ids, fake_reference(prompt, 6));
  EXPECT_EQ(out["d-s"].error, "");
  EXPECT_EQ(decode.backend->num_tokens_computed, 6);  // the last prompt token + 5 decode steps
  EXPECT_EQ(decode.connector->stats().num_blocks_received, 4);
  drive(prefill);
  EXPECT_EQ(prefill.connector->stats().num_leases_done, 1);
  EXPECT_EQ(prefill.connector->stats().num_blocks_pinned, 0);
  decode.connector->stop();
  prefill.connector->stop();
}

// Issue 22: a decode request aborted while it waited for its pull (an early
// stop) ends the prefill's lease at once instead of at its expiry.
TEST_F(PdEngineHandoff, DecodeAbortedBeforeItsPullEndsThePrefillsLease) {
  Instance decode = make_instance(pd_options(PdRole::kDecode, "decode-a", clock_));
  const std::vector<int32_t> prompt = tokens(13, 700);
  const Json params = run_prefill(prefill_, "p-a", prompt);
  EXPECT_EQ(prefill_.connector->stats().num_leases, 1);
  ASSERT_TRUE(decode.engine->add_request(decode_request("d-a", prompt, params)).is_ok());
  ASSERT_TRUE(decode.engine->abort_request("d-a").has_value());  // before any step: never pulled
  EXPECT_TRUE(wait_until([&] { return prefill_.connector->stats().num_leases_done == 1; }));
  EXPECT_EQ(prefill_.connector->stats().num_lease_expirations, 0);
  EXPECT_EQ(decode.connector->stats().num_loads_ok + decode.connector->stats().num_loads_failed, 0);
  decode.connector->stop();
}

}  // namespace
}  // namespace baton::testing

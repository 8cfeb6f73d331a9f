// The engine (src/engine) on the CUDA backend: batch invariance under
// pressure (each fixture prompt alone vs all of them twice with a 32-token
// budget, chunked prefill, preemption and prefix hits: the same tokens) and
// stability (10,000 mixed requests: no device memory growth, every request
// complete, the KV pool fully free at the end).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "backend/cuda/cuda_backend.h"
#include "cuda_test_util.h"
#include "engine/engine_core.h"
#include "model/checkpoint.h"

namespace baton::cuda {
namespace {

std::string model_dir(const std::string& name) { return std::string(BATON_TEST_DATA) + "/fixtures/models/" + name; }

std::unique_ptr<EngineCore> make_engine(const std::string& model, const EngineOptions& opts, bool invariant,
                                        bool graphs = true) {
  auto ck = Checkpoint::open(model_dir(model));
  EXPECT_TRUE(ck.is_ok()) << ck.status().to_string();
  if (!ck.is_ok()) return nullptr;
  CudaBackendOptions o;
  o.max_num_tokens = 4096;
  o.batch_invariant = invariant;
  o.use_cuda_graphs = graphs;
  auto b = CudaBackend::create(**ck, o);
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  if (!b.is_ok()) return nullptr;
  auto e = EngineCore::create(std::unique_ptr<Backend>(std::move(b).value()), nullptr, opts);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  if (!e.is_ok()) return nullptr;
  return std::move(e).value();
}

struct Out {
  std::vector<int32_t> ids;
  bool finished = false;
  std::string error;
  FinishReason reason = FinishReason::kNone;
};

std::map<std::string, Out> run(EngineCore& e, int max_steps = 1000000) {
  std::map<std::string, Out> all;
  for (int i = 0; i < max_steps && e.has_unfinished_requests(); ++i) {
    for (RequestOutput& o : e.step()) {
      Out& x = all[o.request_id];
      x.ids.insert(x.ids.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      if (o.finished) {
        x.finished = true;
        x.error = o.error;
        x.reason = o.finish_reason;
      }
    }
  }
  EXPECT_FALSE(e.has_unfinished_requests());
  return all;
}

GenerationRequest greedy(const std::string& id, std::vector<int32_t> prompt, int max_tokens) {
  GenerationRequest g;
  g.request_id = id;
  g.prompt_ids = std::move(prompt);
  g.max_tokens = max_tokens;
  g.ignore_eos = true;
  g.detokenize = false;
  g.sampling.temperature = 0.0f;
  return g;
}

class CudaEngine : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaEngine, BatchInvarianceUnderPressure) {
  BATON_REQUIRE_GPU();
  auto golden = read_json_file(model_dir(GetParam()) + "/golden.json");
  ASSERT_TRUE(golden.is_ok());
  const Json& prompts = (*golden)["prompts"];
  // Alone: one request at a time, room to spare.
  std::map<std::string, std::vector<int32_t>> alone;
  {
    EngineOptions opts;
    opts.num_kv_blocks = 256;
    auto e = make_engine(GetParam(), opts, true);
    ASSERT_TRUE(e);
    for (size_t i = 0; i < prompts.size(); ++i) {
      ASSERT_TRUE(
          e->add_request(greedy("solo" + std::to_string(i), prompts[i]["prompt_ids"].get<std::vector<int32_t>>(),
                                static_cast<int>(prompts[i]["greedy_ids"].size())))
              .is_ok());
      auto out = run(*e);
      alone["p" + std::to_string(i)] = out["solo" + std::to_string(i)].ids;
    }
  }
  for (bool prefix : {true, false}) {
    EngineOptions opts;
    opts.max_num_batched_tokens = 32;
    opts.num_kv_blocks = 16;
    opts.enable_prefix_caching = prefix;
    auto e = make_engine(GetParam(), opts, true);
    ASSERT_TRUE(e);
    for (int copy = 0; copy < 2; ++copy)
      for (size_t i = 0; i < prompts.size(); ++i)
        ASSERT_TRUE(e->add_request(greedy("p" + std::to_string(i) + "c" + std::to_string(copy),
                                          prompts[i]["prompt_ids"].get<std::vector<int32_t>>(),
                                          static_cast<int>(prompts[i]["greedy_ids"].size())))
                        .is_ok());
    auto out = run(*e);
    for (int copy = 0; copy < 2; ++copy)
      for (size_t i = 0; i < prompts.size(); ++i) {
        const Out& o = out["p" + std::to_string(i) + "c" + std::to_string(copy)];
        EXPECT_TRUE(o.finished && o.error.empty()) << o.error;
        EXPECT_EQ(o.ids, alone["p" + std::to_string(i)])
            << GetParam() << " prompt " << i << " copy " << copy << (prefix ? " prefix on" : " prefix off");
      }
    EngineStats s = e->stats();
    EXPECT_GT(s.num_preemptions, 0);
    EXPECT_EQ(s.num_kv_blocks_free, s.num_kv_blocks_total);
    if (prefix) EXPECT_GT(s.prefix_cache_hits, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaEngine,
                         ::testing::Values("llama3-tiny", "qwen2-tiny", "qwen3-tiny", "qwen3-moe-tiny"));

// logit_bias through CudaBackend::pack, inside the decode graphs (up to
// kGraphPenaltiesPerSeq = 32 entries a sequence) and past them (the eager
// step): +100 on one token makes it every greedy pick, -100 on the tokens an
// unbiased run picked keeps them all out, and a request without a bias in the
// same steps is unchanged.
TEST(CudaEngineLogitBias, SteersGreedyPicksInAndOutOfTheGraphs) {
  BATON_REQUIRE_GPU();
  EngineOptions opts;
  opts.num_kv_blocks = 64;
  auto e = make_engine("qwen3-tiny", opts, false);
  ASSERT_TRUE(e);
  const std::vector<int32_t> prompt = {11, 22, 33, 44, 55};
  ASSERT_TRUE(e->add_request(greedy("plain", prompt, 8)).is_ok());
  const std::vector<int32_t> plain = run(*e)["plain"].ids;
  ASSERT_EQ(plain.size(), 8u);
  const std::set<int32_t> picked(plain.begin(), plain.end());
  const int32_t lifted = picked.count(7) ? 8 : 7;
  for (int fillers : {0, 39}) {  // 1 or 40 entries up; picked.size() or + 39 down
    // Fillers: -1 on ids that no run here picks.
    std::vector<std::pair<int32_t, float>> filler;
    for (int32_t id = 300; static_cast<int>(filler.size()) < fillers; ++id)
      if (!picked.count(id) && id != lifted) filler.emplace_back(id, -1.0f);
    GenerationRequest up = greedy("up", prompt, 8);
    up.sampling.logit_bias = filler;
    up.sampling.logit_bias.emplace_back(lifted, 100.0f);
    GenerationRequest down = greedy("down", prompt, 8);
    down.sampling.logit_bias = filler;
    for (int32_t id : picked) down.sampling.logit_bias.emplace_back(id, -100.0f);
    for (GenerationRequest* g : {&up, &down}) std::sort(g->sampling.logit_bias.begin(), g->sampling.logit_bias.end());
    ASSERT_TRUE(e->add_request(up).is_ok());
    ASSERT_TRUE(e->add_request(down).is_ok());
    ASSERT_TRUE(e->add_request(greedy("again", prompt, 8)).is_ok());
    auto out = run(*e);
    EXPECT_EQ(out["up"].ids, std::vector<int32_t>(8, lifted)) << fillers << " fillers";
    ASSERT_EQ(out["down"].ids.size(), 8u);
    for (int32_t id : out["down"].ids) EXPECT_EQ(picked.count(id), 0u) << id << ", " << fillers << " fillers";
    EXPECT_EQ(out["again"].ids, plain) << fillers << " fillers";
  }
}

size_t device_free_bytes() {
  size_t f = 0, t = 0;
  BATON_CUDA_CHECK(cudaDeviceSynchronize());
  BATON_CUDA_CHECK(cudaMemGetInfo(&f, &t));
  return f;
}

// 10,000 requests of mixed lengths and sampling settings through the engine on
// the GPU (decode graphs on): all complete with their max_tokens, device
// memory does not grow after a warm-up, and the KV pool ends fully free.
TEST(CudaEngineStability, TenThousandMixedRequests) {
  BATON_REQUIRE_GPU();
  EngineOptions opts;
  opts.num_kv_blocks = 600;  // tight enough for preemption at times
  opts.max_num_seqs = 256;
  opts.max_num_batched_tokens = 2048;
  auto e = make_engine("qwen3-moe-tiny", opts, false);
  ASSERT_TRUE(e);
  std::mt19937 rng(2024);
  const int total = 10000, warmup = 2000, wave = 1000;
  size_t free_after_warmup = 0;
  int submitted = 0, completed = 0, errors = 0, wrong_length = 0;
  std::map<std::string, int> want;
  while (submitted < total) {
    for (int i = 0; i < wave && submitted < total; ++i, ++submitted) {
      const int len = 1 + static_cast<int>(rng() % (rng() % 8 == 0 ? 600 : 120));
      std::vector<int32_t> prompt(len);
      for (auto& t : prompt) t = static_cast<int32_t>(rng() % 512);
      GenerationRequest g = greedy("r" + std::to_string(submitted), prompt, 1 + static_cast<int>(rng() % 48));
      switch (rng() % 4) {
        case 0: break;  // greedy
        case 1:
          g.sampling.temperature = 0.8f;
          g.sampling.top_p = 0.9f;
          break;
        case 2:
          g.sampling.temperature = 1.0f;
          g.sampling.top_k = 20;
          g.sampling.seed = rng();
          break;
        default:
          g.sampling.temperature = 0.7f;
          g.sampling.min_p = 0.05f;
          g.sampling.repetition_penalty = 1.1f;
          break;
      }
      want[g.request_id] = g.max_tokens;
      ASSERT_TRUE(e->add_request(g).is_ok());
    }
    auto out = run(*e);
    for (auto& [id, o] : out) {
      if (!o.finished) continue;
      ++completed;
      if (!o.error.empty()) ++errors;
      if (static_cast<int>(o.ids.size()) != want[id]) ++wrong_length;
    }
    if (submitted == warmup) free_after_warmup = device_free_bytes();
  }
  EXPECT_EQ(completed, total);
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(wrong_length, 0);
  const size_t free_end = device_free_bytes();
  EXPECT_GE(free_end + (8u << 20), free_after_warmup)
      << "device memory grew by " << (free_after_warmup - free_end) / 1048576.0 << " MiB";
  EngineStats s = e->stats();
  EXPECT_EQ(s.num_kv_blocks_free, s.num_kv_blocks_total);
  EXPECT_EQ(s.num_running, 0);
  EXPECT_EQ(s.num_waiting, 0);
  std::printf("stability: %d requests, %lld steps, %lld preemptions, %lld generated tokens, free memory %zu -> %zu\n",
              total, static_cast<long long>(s.num_steps), static_cast<long long>(s.num_preemptions),
              static_cast<long long>(s.generation_tokens_total), free_after_warmup, free_end);
}

}  // namespace
}  // namespace baton::cuda

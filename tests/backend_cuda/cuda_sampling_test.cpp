// GPU sampling against the CPU sampler (backend/sampler.h): the same Philox
// draws give the same tokens, for greedy, temperature, top-k, top-p, min-p,
// penalties and banned ids; logprobs and top logprobs agree.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "backend/cuda/sampling.h"
#include "backend/sampler.h"
#include "cuda_test_util.h"

namespace baton::cuda {
namespace {

using namespace baton::cuda::testing;

struct Case {
  SamplingParams p;
  const char* name;
};

TEST(CudaSampling, SameTokensAsCpuSampler) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(11);
  const int vocab = 5000, rows = 64;
  std::vector<Case> cases;
  auto mk = [](float t, int k, float tp, float mp, float rep, float pres, float freq, int nlp) {
    SamplingParams p;
    p.temperature = t;
    p.top_k = k;
    p.top_p = tp;
    p.min_p = mp;
    p.repetition_penalty = rep;
    p.presence_penalty = pres;
    p.frequency_penalty = freq;
    p.num_logprobs = nlp;
    return p;
  };
  cases.push_back({mk(0.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 5), "greedy"});
  cases.push_back({mk(1.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, -1), "temperature"});
  cases.push_back({mk(0.7f, 50, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0), "top_k"});
  cases.push_back({mk(1.3f, 0, 0.8f, 0.0f, 1.0f, 0.0f, 0.0f, 3), "top_p"});
  cases.push_back({mk(1.0f, 0, 1.0f, 0.05f, 1.0f, 0.0f, 0.0f, -1), "min_p"});
  cases.push_back({mk(0.9f, 100, 0.9f, 0.01f, 1.0f, 0.0f, 0.0f, -1), "all filters"});
  cases.push_back({mk(0.8f, 0, 1.0f, 0.0f, 1.3f, 0.5f, 0.2f, 2), "penalties"});
  cases.push_back({mk(0.0f, 0, 1.0f, 0.0f, 1.5f, 0.0f, 1.0f, -1), "greedy penalties"});
  for (const Case& c : cases) {
    // Logits with a spread like a model's (a few large, many small).
    std::normal_distribution<float> nd(0.0f, 3.0f);
    std::vector<float> logits(static_cast<size_t>(rows) * vocab);
    for (auto& x : logits) x = nd(rng);
    std::vector<std::vector<int32_t>> outputs(rows), prompts(rows);
    std::vector<SampleRequest> reqs(rows);
    std::vector<SampleRowParams> params(rows);
    std::vector<PenaltyToken> pens;
    for (int r = 0; r < rows; ++r) {
      for (int j = 0; j < 30; ++j) outputs[r].push_back(rng() % vocab);
      for (int j = 0; j < 20; ++j) prompts[r].push_back(rng() % vocab);
      SampleRequest& q = reqs[r];
      q.seq_index = r;
      q.params = &c.p;
      q.seed = rng();
      q.num_output_tokens = rng() % 1000;
      q.output_ids = &outputs[r];
      q.prompt_ids = &prompts[r];
      q.banned_token_ids = {static_cast<int32_t>(rng() % vocab)};
      SampleRowParams& p = params[r];
      p.temperature = c.p.temperature;
      p.top_k = c.p.top_k;
      p.top_p = c.p.top_p;
      p.min_p = c.p.min_p;
      p.repetition_penalty = c.p.repetition_penalty;
      p.presence_penalty = c.p.presence_penalty;
      p.frequency_penalty = c.p.frequency_penalty;
      p.num_logprobs = c.p.num_logprobs;
      p.seed = q.seed;
      p.step = q.num_output_tokens;
      p.penalty_begin = static_cast<int>(pens.size());
      std::map<int32_t, PenaltyToken> m;
      for (int32_t id : q.banned_token_ids) m[id].banned = 1;
      for (int32_t id : prompts[r]) m[id].seen = 1;
      for (int32_t id : outputs[r]) {
        m[id].seen = 1;
        m[id].output_count++;
      }
      for (auto& [id, pt] : m) {
        pt.token = id;
        pens.push_back(pt);
      }
      p.penalty_end = static_cast<int>(pens.size());
    }
    auto dl = upload(logits);
    auto dwork = poisoned_f32(logits.size());
    auto dp = upload(params);
    auto dpen = upload(pens);
    auto dtok = upload(std::vector<int32_t>(rows, -7));
    auto dlp = poisoned_f32(rows);
    auto dtid = upload(std::vector<int32_t>(rows * kMaxTopLogprobs, -7));
    auto dtlp = poisoned_f32(rows * kMaxTopLogprobs);
    SampleOutputs out{dtok.as<int32_t>(), dlp.as<float>(), dtid.as<int32_t>(), dtlp.as<float>()};
    launch_sample(dl.as<float>(), dwork.as<float>(), rows, vocab, dp.as<SampleRowParams>(), dpen.as<PenaltyToken>(), out,
                  nullptr);
    auto tok = download<int32_t>(dtok, rows);
    auto lp = download<float>(dlp, rows);
    auto tid = download<int32_t>(dtid, rows * kMaxTopLogprobs);
    auto tlp = download<float>(dtlp, rows * kMaxTopLogprobs);
    Sampler cpu;
    int same = 0;
    for (int r = 0; r < rows; ++r) {
      Result<SampleResult> s = cpu.sample(logits.data() + static_cast<size_t>(r) * vocab, vocab, reqs[r]);
      ASSERT_TRUE(s.is_ok()) << s.status().to_string();
      same += s->token_id == tok[r];
      if (s->token_id == tok[r]) {
        EXPECT_NEAR(s->logprob, lp[r], 1e-4) << c.name;
      }
      for (size_t j = 0; j < s->top_logprobs.size(); ++j) {
        EXPECT_EQ(s->top_logprobs[j].first, tid[r * kMaxTopLogprobs + j]) << c.name;
        EXPECT_NEAR(s->top_logprobs[j].second, tlp[r * kMaxTopLogprobs + j], 1e-4) << c.name;
      }
    }
    // Float rounding (expf/logf on the GPU vs libm) may flip a near tie: allow one row in 64.
    EXPECT_GE(same, rows - 1) << c.name << ": " << same << " of " << rows << " rows agree";
  }
}

TEST(CudaSampling, SeededDrawsAreReproducibleAndVary) {
  BATON_REQUIRE_GPU();
  std::mt19937 rng(12);
  const int vocab = 1000, rows = 200;
  std::vector<float> logits(vocab);
  for (auto& x : logits) x = std::normal_distribution<float>(0.0f, 1.0f)(rng);
  std::vector<float> all;
  for (int r = 0; r < rows; ++r) all.insert(all.end(), logits.begin(), logits.end());
  std::vector<SampleRowParams> params(rows);
  for (int r = 0; r < rows; ++r) {
    params[r].temperature = 1.0f;
    params[r].seed = 42;
    params[r].step = r;  // a different step each row
  }
  auto dl = upload(all);
  auto dwork = poisoned_f32(all.size());
  auto dp = upload(params);
  auto dpen = upload(std::vector<PenaltyToken>(1));
  auto dtok = upload(std::vector<int32_t>(rows, -7));
  auto dlp = poisoned_f32(rows);
  auto dtid = upload(std::vector<int32_t>(rows * kMaxTopLogprobs));
  auto dtlp = poisoned_f32(rows * kMaxTopLogprobs);
  SampleOutputs out{dtok.as<int32_t>(), dlp.as<float>(), dtid.as<int32_t>(), dtlp.as<float>()};
  launch_sample(dl.as<float>(), dwork.as<float>(), rows, vocab, dp.as<SampleRowParams>(), dpen.as<PenaltyToken>(), out, nullptr);
  auto a = download<int32_t>(dtok, rows);
  launch_sample(dl.as<float>(), dwork.as<float>(), rows, vocab, dp.as<SampleRowParams>(), dpen.as<PenaltyToken>(), out, nullptr);
  auto b = download<int32_t>(dtok, rows);
  EXPECT_EQ(a, b);
  std::set<int32_t> distinct(a.begin(), a.end());
  EXPECT_GT(distinct.size(), 20u) << "temperature 1 over 1000 tokens should spread";
}

}  // namespace
}  // namespace baton::cuda

// backend-ops runner: GPU sampling against the CPU sampler (backend/sampler.h).
// The same Philox draws give the same tokens for greedy, temperature, top-k,
// top-p, min-p, penalties, logit bias and banned ids; logprobs and top logprobs agree; a
// second launch on the same inputs draws the same tokens.
#include <map>

#include "backend/cuda/sampling.h"
#include "backend/sampler.h"
#include "backend_ops.h"

namespace baton::cuda::ops {
namespace {

using testing::download;
using testing::poisoned_f32;
using testing::upload;

// Float rounding (expf/logf on the GPU vs libm) may flip a near tie: one row
// in 64 may draw another token.
constexpr double kTolTokenFlips = 1.0 / 64;

struct SampleInputs {
  std::vector<float> logits;
  std::vector<std::vector<int32_t>> outputs, prompts;
  std::vector<SampleRequest> reqs;
  std::vector<SampleRowParams> params;
  std::vector<PenaltyToken> penalties;
};

// Logits with a spread like a model's (a few large, many small), a history
// of 20 prompt and 30 output tokens and one banned id per row (or per
// s.history_every rows; none: plain rows).
SampleInputs sample_inputs(const SampleShape& s, const SamplingParams& p, std::mt19937& rng) {
  SampleInputs in;
  const int rows = s.rows, vocab = s.vocab;
  std::normal_distribution<float> nd(0.0f, 3.0f);
  in.logits.resize(static_cast<size_t>(rows) * vocab);
  for (auto& x : in.logits) x = nd(rng);
  in.outputs.resize(rows);
  in.prompts.resize(rows);
  in.reqs.resize(rows);
  in.params.resize(rows);
  for (int r = 0; r < rows; ++r) {
    const bool history = s.history_every > 0 && r % s.history_every == 0;
    for (int j = 0; history && j < 30; ++j) in.outputs[r].push_back(static_cast<int32_t>(rng() % vocab));
    for (int j = 0; history && j < 20; ++j) in.prompts[r].push_back(static_cast<int32_t>(rng() % vocab));
    SampleRequest& q = in.reqs[r];
    q.seq_index = r;
    q.params = &p;
    q.seed = rng();
    q.num_output_tokens = rng() % 1000;
    q.output_ids = &in.outputs[r];
    q.prompt_ids = &in.prompts[r];
    if (history) q.banned_token_ids = {static_cast<int32_t>(rng() % vocab)};
    SampleRowParams& rp = in.params[r];
    rp = sample_row_params(q, static_cast<int>(in.penalties.size()));
    std::map<int32_t, PenaltyToken> m;  // as CudaBackend::pack lists them
    for (int32_t id : q.banned_token_ids) m[id].banned = 1;
    for (const auto& [id, bias] : p.logit_bias) m[id].bias = bias;
    for (int32_t id : in.prompts[r]) m[id].seen = 1;
    for (int32_t id : in.outputs[r]) {
      m[id].seen = 1;
      m[id].output_count++;
    }
    for (auto& [id, pt] : m) {
      pt.token = id;
      in.penalties.push_back(pt);
    }
    rp.penalty_end = static_cast<int>(in.penalties.size());
  }
  return in;
}

std::vector<Check> run_sampling(const SampleShape& s, std::mt19937& rng) {
  const SamplingParams& p = s.params;
  const SampleInputs in = sample_inputs(s, p, rng);
  const int rows = s.rows, vocab = s.vocab;
  auto dl = upload(in.logits);
  auto dwork = poisoned_f32(in.logits.size());
  auto dp = upload(in.params);
  auto dpen = upload(in.penalties.empty() ? std::vector<PenaltyToken>(1) : in.penalties);
  auto dtok = upload(std::vector<int32_t>(rows, -7));
  auto dlp = poisoned_f32(rows);
  auto dtid = upload(std::vector<int32_t>(static_cast<size_t>(rows) * kMaxTopLogprobs, -7));
  auto dtlp = poisoned_f32(static_cast<size_t>(rows) * kMaxTopLogprobs);
  SampleOutputs out{dtok.as<int32_t>(), dlp.as<float>(), dtid.as<int32_t>(), dtlp.as<float>()};
  auto launch = [&] {
    launch_sample(dl.as<float>(), dwork.as<float>(), rows, vocab, dp.as<SampleRowParams>(), dpen.as<PenaltyToken>(),
                  out, nullptr);
  };
  launch();
  const auto tok = download<int32_t>(dtok, rows);
  const auto lp = download<float>(dlp, rows);
  const auto tid = download<int32_t>(dtid, static_cast<size_t>(rows) * kMaxTopLogprobs);
  const auto tlp = download<float>(dtlp, static_cast<size_t>(rows) * kMaxTopLogprobs);
  launch();
  const auto again = download<int32_t>(dtok, rows);

  Sampler cpu;
  std::vector<int32_t> ref_tok(rows);
  std::vector<float> got_lp, ref_lp, got_tlp, ref_tlp;  // logprobs where the token agrees; top logprobs
  std::vector<int32_t> got_tid, ref_tid;
  for (int r = 0; r < rows; ++r) {
    Result<SampleResult> c = cpu.sample(in.logits.data() + static_cast<size_t>(r) * vocab, vocab, in.reqs[r]);
    BATON_CHECK(c.is_ok(), "CPU sampler: {}", c.status().to_string());
    ref_tok[r] = c->token_id;
    if (c->token_id == tok[r]) {
      got_lp.push_back(lp[r]);
      ref_lp.push_back(c->logprob);
    }
    for (size_t j = 0; j < c->top_logprobs.size(); ++j) {
      ref_tid.push_back(c->top_logprobs[j].first);
      got_tid.push_back(tid[r * kMaxTopLogprobs + j]);
      ref_tlp.push_back(c->top_logprobs[j].second);
      got_tlp.push_back(tlp[r * kMaxTopLogprobs + j]);
    }
  }
  std::vector<Check> checks = {compare_exact("tokens", tok, ref_tok, kTolTokenFlips),
                               compare_exact("repeat", again, tok),
                               compare_max_abs("logprob", got_lp, ref_lp, kTolLogprob)};
  if (!ref_tid.empty()) {
    checks.push_back(compare_exact("top_ids", got_tid, ref_tid));
    checks.push_back(compare_max_abs("top_logprobs", got_tlp, ref_tlp, kTolLogprob));
  }
  return checks;
}

}  // namespace

OpCase sampling_case(const SampleShape& s) {
  const std::string shape = s.name + " rows" + std::to_string(s.rows) + " vocab" + std::to_string(s.vocab) +
                            (s.history_every == 1 ? "" : " history_every" + std::to_string(s.history_every));
  return make_case("sample", shape, s, run_sampling);
}

}  // namespace baton::cuda::ops

#include "backend/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/philox.h"

namespace baton {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// log(sum(exp(row))) over the finite part; -inf when nothing is finite.
double log_sum_exp(const float* row, int n) {
  float mx = kNegInf;
  for (int i = 0; i < n; ++i) mx = std::max(mx, row[i]);
  if (mx == kNegInf) return -std::numeric_limits<double>::infinity();
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(row[i]) - mx);
  return mx + std::log(sum);
}

}  // namespace

Status validate_sampling_params(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f)
    return invalid_argument("temperature must be >= 0, got {}", p.temperature);
  if (p.top_k < -1) return invalid_argument("top_k must be -1, 0 or positive, got {}", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return invalid_argument("top_p must be in (0, 1], got {}", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return invalid_argument("min_p must be in [0, 1], got {}", p.min_p);
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty))
    return invalid_argument("repetition_penalty must be > 0, got {}", p.repetition_penalty);
  if (!std::isfinite(p.presence_penalty))
    return invalid_argument("presence_penalty must be finite, got {}", p.presence_penalty);
  if (!std::isfinite(p.frequency_penalty))
    return invalid_argument("frequency_penalty must be finite, got {}", p.frequency_penalty);
  if (p.num_logprobs < -1) return invalid_argument("num_logprobs must be >= -1, got {}", p.num_logprobs);
  for (size_t i = 0; i < p.logit_bias.size(); ++i) {
    const auto [id, bias] = p.logit_bias[i];
    if (id < 0) return invalid_argument("logit_bias token id must be >= 0, got {}", id);
    if (i > 0 && id <= p.logit_bias[i - 1].first)
      return invalid_argument("logit_bias token ids must be ascending and distinct ({} after {})", id,
                              p.logit_bias[i - 1].first);
    if (!std::isfinite(bias)) return invalid_argument("logit_bias of token {} must be finite, got {}", id, bias);
  }
  return Status::ok();
}

int32_t argmax_lowest(const float* row, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; ++i)
    if (row[i] > row[best]) best = i;
  return best;
}

Result<SampleResult> Sampler::sample(const float* logits, int vocab, const SampleRequest& req) {
  if (req.params == nullptr) return invalid_argument("sample request {} has no sampling params", req.seq_index);
  if (vocab <= 0) return invalid_argument("empty logits row");
  const SamplingParams& p = *req.params;
  BATON_RETURN_IF_ERROR(validate_sampling_params(p));
  for (int i = 0; i < vocab; ++i)
    if (std::isnan(logits[i])) return internal_error("logits row has NaN at token {}", i);

  work_.assign(logits, logits + vocab);  // [vocab]
  float* w = work_.data();
  auto check_id = [vocab](int32_t id, const char* what) -> Status {
    if (id < 0 || id >= vocab)
      return invalid_argument("{} token id {} outside the vocabulary [0, {})", what, id, vocab);
    return Status::ok();
  };

  // 1. banned tokens.
  for (int32_t id : req.banned_token_ids) {
    BATON_RETURN_IF_ERROR(check_id(id, "banned"));
    w[id] = kNegInf;
  }
  for (const auto& [id, bias] : p.logit_bias) {
    BATON_RETURN_IF_ERROR(check_id(id, "logit_bias"));
    w[id] += bias;  // a banned token stays -inf
  }
  // 2. repetition penalty over prompt + output (each token once).
  if (p.repetition_penalty != 1.0f) {
    seen_.assign(vocab, 0);
    for (const auto* ids : {req.prompt_ids, req.output_ids}) {
      if (ids == nullptr) continue;
      for (int32_t id : *ids) {
        BATON_RETURN_IF_ERROR(check_id(id, "penalized"));
        seen_[id] = 1;
      }
    }
    for (int i = 0; i < vocab; ++i) {
      if (!seen_[i]) continue;
      w[i] = w[i] > 0.0f ? w[i] / p.repetition_penalty : w[i] * p.repetition_penalty;
    }
  }
  // 3. presence / frequency penalties over output tokens.
  if ((p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) && req.output_ids != nullptr) {
    counts_.assign(vocab, 0);
    for (int32_t id : *req.output_ids) {
      BATON_RETURN_IF_ERROR(check_id(id, "output"));
      ++counts_[id];
    }
    for (int i = 0; i < vocab; ++i) {
      if (counts_[i] == 0) continue;
      w[i] -= p.frequency_penalty * static_cast<float>(counts_[i]) + p.presence_penalty;
    }
  }

  int32_t token = -1;
  if (p.is_greedy()) {
    token = argmax_lowest(w, vocab);
    if (w[token] == kNegInf) return invalid_argument("every token of the vocabulary is banned");
  } else {
    // 4. temperature.
    const float inv_t = 1.0f / p.temperature;
    float mx = kNegInf;
    for (int i = 0; i < vocab; ++i) {
      w[i] *= inv_t;
      mx = std::max(mx, w[i]);
    }
    if (mx == kNegInf) return invalid_argument("every token of the vocabulary is banned");
    // min_p: drop tokens whose probability is below min_p * max probability.
    if (p.min_p > 0.0f) {
      for (int i = 0; i < vocab; ++i)
        if (std::exp(w[i] - mx) < p.min_p) w[i] = kNegInf;
    }
    // Tokens still in play, for top-k / top-p.
    order_.clear();
    for (int i = 0; i < vocab; ++i)
      if (w[i] != kNegInf) order_.push_back(i);
    const int num_kept = static_cast<int>(order_.size());
    if (p.top_k > 0 && p.top_k < num_kept) {
      auto kth = order_.begin() + (p.top_k - 1);
      std::nth_element(order_.begin(), kth, order_.end(), [w](int32_t a, int32_t b) { return w[a] > w[b]; });
      const float threshold = w[*kth];
      std::vector<int32_t> kept;
      for (int32_t id : order_) {
        if (w[id] < threshold) w[id] = kNegInf;
        else kept.push_back(id);
      }
      order_.swap(kept);
    }
    if (p.top_p < 1.0f && order_.size() > 1) {
      // Ascending by logit (ties by descending id, so the lowest id is "largest").
      std::sort(order_.begin(), order_.end(), [w](int32_t a, int32_t b) { return w[a] != w[b] ? w[a] < w[b] : a > b; });
      const float top = w[order_.back()];
      double total = 0.0;
      for (int32_t id : order_) total += std::exp(static_cast<double>(w[id]) - top);
      double cum = 0.0;
      const double cut = 1.0 - static_cast<double>(p.top_p);
      for (size_t j = 0; j + 1 < order_.size(); ++j) {
        cum += std::exp(static_cast<double>(w[order_[j]]) - top) / total;
        if (cum > cut) break;
        w[order_[j]] = kNegInf;
      }
    }
    // Gumbel-max draw over the tokens still in play.
    const uint64_t step = static_cast<uint64_t>(req.num_output_tokens);
    float best = kNegInf;
    for (int i = 0; i < vocab; ++i) {
      if (w[i] == kNegInf) continue;
      const float u = philox_uniform(req.seed, step, static_cast<uint64_t>(i));
      const float score = w[i] - std::log(-std::log(u));
      if (token < 0 || score > best) {
        best = score;
        token = i;
      }
    }
    if (token < 0) return invalid_argument("every token of the vocabulary is banned");
  }

  SampleResult out;
  out.token_id = token;
  const double lse = log_sum_exp(logits, vocab);
  out.logprob = static_cast<float>(logits[token] - lse);
  if (p.num_logprobs > 0) {
    const int n = std::min(p.num_logprobs, vocab);
    order_.resize(vocab);
    for (int i = 0; i < vocab; ++i) order_[i] = i;
    std::partial_sort(order_.begin(), order_.begin() + n, order_.end(), [logits](int32_t a, int32_t b) {
      return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
    });
    out.top_logprobs.reserve(n);
    for (int j = 0; j < n; ++j) out.top_logprobs.emplace_back(order_[j], static_cast<float>(logits[order_[j]] - lse));
  }
  return out;
}

}  // namespace baton

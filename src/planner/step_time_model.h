// How long one engine step takes, from the step's shape: a linear model
// over the terms that set a step's cost on a GPU,
//   t = fixed + per_prefill_token * prefill_tokens
//             + per_attention_pair * prefill_attention_pairs
//             + per_decode_seq * decode_seqs
//             + per_context_token * decode_context_tokens
// (weights and activations stream once per step: fixed; GEMM FLOPs grow
// with every token computed; prefill attention with query x key pairs;
// decode attention reads each sequence's whole KV). Fitted from measured
// steps only (`baton profile`), with non-negative coefficients, minimising
// the relative error, so a short decode step counts as much as a long
// prefill. The fit's residuals are kept: the planner perturbs the model by
// them for its confidence band.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton::planner {

struct StepShape {
  int64_t prefill_tokens = 0;          // prompt tokens computed this step (chunks included)
  double prefill_attention_pairs = 0;  // sum over chunks of query x key pairs (causal)
  int64_t decode_seqs = 0;             // sequences computing one token
  int64_t decode_context_tokens = 0;   // sum of those sequences' contexts (KV read)
};

// Query x key pairs of a causal chunk of `new_tokens` after `computed` tokens.
double causal_pairs(int64_t computed, int64_t new_tokens);

struct StepSample {
  StepShape shape;
  double seconds = 0;
  std::string label;  // where it was measured ("decode batch 64, context 1024")
};

struct FitReport {
  int num_samples = 0;
  double rms_rel_error = 0;  // of predicted vs measured step time
  double max_rel_error = 0;
  std::vector<double> rel_errors;  // per sample, (predicted - measured) / measured
  Json to_json() const;
};

class StepTimeModel {
 public:
  static constexpr int kNumTerms = 5;
  using Coefficients = std::array<double, kNumTerms>;

  StepTimeModel() = default;
  explicit StepTimeModel(Coefficients c) : c_(c) {}
  // Every step takes `step_s`, whatever its shape (closed-form tests).
  static StepTimeModel constant(double step_s);
  // Non-negative least squares on relative errors; needs samples that vary
  // at least the terms it is to learn (an unvaried term gets 0).
  static Result<StepTimeModel> fit(std::span<const StepSample> samples, FitReport* report = nullptr);

  double step_s(const StepShape& shape) const;
  // The same model with every step `factor` times as long (confidence bands).
  StepTimeModel scaled(double factor) const;
  const Coefficients& coefficients() const { return c_; }
  Json to_json() const;

 private:
  Coefficients c_{};
};

// The measured steps of one model in a `baton profile` JSON document
// (models[].decode[]: batch, context, step_ms; models[].prefill[]: tokens,
// time_ms). `model` picks the entry by name ("" = the first).
Result<std::vector<StepSample>> samples_from_profile(const Json& profile, const std::string& model);

}  // namespace baton::planner

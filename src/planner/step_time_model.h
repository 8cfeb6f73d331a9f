// How long one engine step takes, from the step's shape:
//   t = max(fixed, per_prefill_token * prefill_tokens)
//       + per_attention_pair * prefill_attention_pairs
//       + per_decode_seq * decode_seqs
//       + per_context_token * decode_context_tokens
//       + per_first_token * first_token_seqs
// A step streams the weights once (fixed: what a decode step costs before
// its sequences); the GEMMs of its prompt tokens read those same weights, so
// a step with enough prompt tokens is bound by their FLOPs and the stream
// hides under them (the max: a 1,024-token prompt is not cheaper by a
// decode step's weight read when it shares a step with seven others).
// Prefill attention grows with query x key pairs; decode attention reads each
// sequence's whole KV. A request whose prompt is done this step (it samples
// its first token) costs the engine host work besides (its answer's start;
// on a PD prefill instance the KV lease): measured on a serving instance
// (scripts/gpu-plan-measure.sh), not by the kernel profile. Fitted from measured steps only (`baton profile`),
// with non-negative coefficients, minimising the relative error, so a short
// decode step counts as much as a long prefill; the profile's attention
// kernels timed alone pin the two attention terms. The fit's residuals are
// kept: the planner perturbs the model by them for its confidence band.
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
  int64_t first_token_seqs = 0;        // requests sampling their first token (their prompt done)
};

// Query x key pairs of a causal chunk of `new_tokens` after `computed` tokens.
double causal_pairs(int64_t computed, int64_t new_tokens);

// What a measurement timed: a whole step, or one part of it alone (the
// profile times the attention kernels apart: they measure only their term).
enum class StepPart { kWholeStep, kPrefillAttention, kDecodeAttention };

struct StepSample {
  StepShape shape;
  double seconds = 0;
  std::string label;  // where it was measured ("decode batch 64, context 1024")
  StepPart part = StepPart::kWholeStep;
};

struct FitReport {
  int num_samples = 0;
  int num_whole_steps = 0;   // of them, whole steps (the rest: parts timed alone)
  double rms_rel_error = 0;  // of predicted vs measured whole steps
  double max_rel_error = 0;
  std::vector<double> rel_errors;  // per sample (parts timed alone too), (predicted - measured) / measured
  Json to_json() const;
};

class StepTimeModel {
 public:
  static constexpr int kNumTerms = 6;
  using Coefficients = std::array<double, kNumTerms>;

  StepTimeModel() = default;
  explicit StepTimeModel(Coefficients c) : c_(c) {}
  // Every step takes `step_s`, whatever its shape (closed-form tests).
  static StepTimeModel constant(double step_s);
  // Non-negative least squares on relative errors; needs samples that vary
  // at least the terms it is to learn (an unvaried term gets 0).
  static Result<StepTimeModel> fit(std::span<const StepSample> samples, FitReport* report = nullptr);

  double step_s(const StepShape& shape) const;
  // What a measurement of `part` alone would time of this step.
  double part_s(const StepShape& shape, StepPart part) const;
  // The same model with every step `factor` times as long (confidence bands).
  StepTimeModel scaled(double factor) const;
  const Coefficients& coefficients() const { return c_; }
  Json to_json() const;

 private:
  Coefficients c_{};
};

// The measured steps of one model in a `baton profile` JSON document
// (models[].decode[]: batch, context, step_ms; models[].prefill[]: tokens,
// time_ms, and context when the chunk follows computed tokens;
// models[].mixed[]: decode_batch, decode_context, prefill_tokens,
// prefill_context, step_ms, a decode batch beside a chunk, from
// baton_gpu_profile --mixed-steps), and, where the profile timed them and gives num_layers, the
// attention kernels alone (decode[].attention_us_per_layer,
// prefill[].attention_ms_per_layer). Rows the profile skipped (KV did not
// fit) are left out. A served instance's prefill throughput, measured at
// saturation (models[].served_prefill[]: prompt_tokens, batch = the prompts
// one step holds, requests_per_s; scripts/gpu-plan-measure.sh), is a step of
// `batch` whole prompts taking batch / requests_per_s. `model` picks the
// entry by name ("" = the first). Defined in profile_samples.cpp.
Result<std::vector<StepSample>> samples_from_profile(const Json& profile, const std::string& model);
// The entry of `model` in a profile's models[] (the first entry when `model`
// is empty); an error naming what is missing.
Result<const Json*> profile_model_entry(const Json& profile, const std::string& model);

}  // namespace baton::planner

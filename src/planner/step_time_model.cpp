#include "planner/step_time_model.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace baton::planner {

namespace {

// The fit's row of one sample: the terms its time is the sum of. A whole
// step is on the floor branch (fixed: its weights' stream sets its base) or
// the compute branch (per_prefill_token * prefill_tokens: its prompt's GEMMs
// do); a part timed alone has its own term only.
StepTimeModel::Coefficients terms_of(const StepShape& s, StepPart part, bool floor_branch) {
  switch (part) {
    case StepPart::kPrefillAttention: return {0, 0, s.prefill_attention_pairs, 0, 0, 0};
    case StepPart::kDecodeAttention: return {0, 0, 0, 0, static_cast<double>(s.decode_context_tokens), 0};
    case StepPart::kWholeStep: break;
  }
  return {floor_branch ? 1.0 : 0.0,
          floor_branch ? 0.0 : static_cast<double>(s.prefill_tokens),
          s.prefill_attention_pairs,
          static_cast<double>(s.decode_seqs),
          static_cast<double>(s.decode_context_tokens),
          static_cast<double>(s.first_token_seqs)};
}

// Projected coordinate descent for min ||A x - b||^2, x >= 0 (a handful of
// unknowns: exact enough after a few hundred sweeps, and never negative).
StepTimeModel::Coefficients nnls(const std::vector<StepTimeModel::Coefficients>& rows, const std::vector<double>& b) {
  constexpr int n = StepTimeModel::kNumTerms;
  // Normal equations: G = A^T A, h = A^T b, with columns scaled to unit norm
  // so that coefficients of very different magnitudes converge alike.
  std::array<double, n> scale{};
  for (const auto& r : rows) {
    for (int j = 0; j < n; ++j) scale[j] += r[j] * r[j];
  }
  for (int j = 0; j < n; ++j) scale[j] = scale[j] > 0 ? 1.0 / std::sqrt(scale[j]) : 0.0;
  std::array<std::array<double, n>, n> g{};
  std::array<double, n> h{};
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int j = 0; j < n; ++j) {
      h[j] += rows[i][j] * scale[j] * b[i];
      for (int k = 0; k < n; ++k) g[j][k] += rows[i][j] * scale[j] * rows[i][k] * scale[k];
    }
  }
  std::array<double, n> x{};
  for (int sweep = 0; sweep < 5000; ++sweep) {
    double change = 0;
    for (int j = 0; j < n; ++j) {
      if (g[j][j] <= 0) continue;  // a term no sample varies
      double grad = -h[j];
      for (int k = 0; k < n; ++k) grad += g[j][k] * x[k];
      const double next = std::max(0.0, x[j] - grad / g[j][j]);
      change = std::max(change, std::abs(next - x[j]));
      x[j] = next;
    }
    if (change < 1e-14) break;
  }
  StepTimeModel::Coefficients c{};
  for (int j = 0; j < n; ++j) c[j] = x[j] * scale[j];
  return c;
}

}  // namespace

double causal_pairs(int64_t computed, int64_t new_tokens) {
  // Query i (0-based in the chunk) sees computed + i + 1 keys.
  const double n = static_cast<double>(new_tokens);
  return n * static_cast<double>(computed) + n * (n + 1) / 2;
}

Json FitReport::to_json() const {
  return Json{{"num_samples", num_samples},
              {"num_whole_steps", num_whole_steps},
              {"rms_rel_error", rms_rel_error},
              {"max_rel_error", max_rel_error},
              {"rel_errors", rel_errors}};
}

StepTimeModel StepTimeModel::constant(double step_s) { return StepTimeModel(Coefficients{step_s, 0, 0, 0, 0, 0}); }

Result<StepTimeModel> StepTimeModel::fit(std::span<const StepSample> samples, FitReport* report) {
  if (samples.size() < 2) {
    return invalid_argument("a step-time fit needs at least 2 measured steps, got {}", samples.size());
  }
  for (const StepSample& s : samples) {
    if (!(s.seconds > 0) || !std::isfinite(s.seconds)) {
      return invalid_argument("measured step '{}' has a step time of {} s: must be positive", s.label, s.seconds);
    }
  }
  // The max is linear on each branch: fit with every step on the branch the
  // last fit puts it on (first: a step with prompt tokens computes), until
  // no step changes branch.
  std::vector<bool> floor(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) floor[i] = samples[i].shape.prefill_tokens == 0;
  StepTimeModel model;
  for (int round = 0; round < 16; ++round) {
    std::vector<Coefficients> rows;
    std::vector<double> b;
    for (size_t i = 0; i < samples.size(); ++i) {
      // Relative error: divide the row by what was measured.
      Coefficients row = terms_of(samples[i].shape, samples[i].part, floor[i]);
      for (double& v : row) v /= samples[i].seconds;
      rows.push_back(row);
      b.push_back(1.0);
    }
    model = StepTimeModel(nnls(rows, b));
    bool changed = false;
    for (size_t i = 0; i < samples.size(); ++i) {
      const bool f = model.c_[0] >= model.c_[1] * static_cast<double>(samples[i].shape.prefill_tokens);
      changed = changed || f != floor[i];
      floor[i] = f;
    }
    if (!changed) break;
  }
  if (report != nullptr) {
    *report = FitReport{};
    report->num_samples = static_cast<int>(samples.size());
    // The band is of whole steps: their residuals make the RMS and the max;
    // a part timed alone has its residual listed only.
    double sum_sq = 0;
    int num_whole = 0;
    for (const StepSample& s : samples) {
      const double rel = (model.part_s(s.shape, s.part) - s.seconds) / s.seconds;
      report->rel_errors.push_back(rel);
      if (s.part != StepPart::kWholeStep) continue;
      ++num_whole;
      sum_sq += rel * rel;
      report->max_rel_error = std::max(report->max_rel_error, std::abs(rel));
    }
    report->num_whole_steps = num_whole;
    report->rms_rel_error = num_whole > 0 ? std::sqrt(sum_sq / num_whole) : 0;
  }
  return model;
}

double StepTimeModel::step_s(const StepShape& shape) const {
  return std::max(c_[0], c_[1] * static_cast<double>(shape.prefill_tokens)) + c_[2] * shape.prefill_attention_pairs +
         c_[3] * static_cast<double>(shape.decode_seqs) + c_[4] * static_cast<double>(shape.decode_context_tokens) +
         c_[5] * static_cast<double>(shape.first_token_seqs);
}

double StepTimeModel::part_s(const StepShape& shape, StepPart part) const {
  switch (part) {
    case StepPart::kPrefillAttention: return c_[2] * shape.prefill_attention_pairs;
    case StepPart::kDecodeAttention: return c_[4] * static_cast<double>(shape.decode_context_tokens);
    case StepPart::kWholeStep: break;
  }
  return step_s(shape);
}

StepTimeModel StepTimeModel::scaled(double factor) const {
  Coefficients c = c_;
  for (double& v : c) v *= factor;
  return StepTimeModel(c);
}

Json StepTimeModel::to_json() const {
  return Json{{"fixed_s", c_[0]},          {"per_prefill_token_s", c_[1]}, {"per_attention_pair_s", c_[2]},
              {"per_decode_seq_s", c_[3]}, {"per_context_token_s", c_[4]}, {"per_first_token_s", c_[5]}};
}

}  // namespace baton::planner

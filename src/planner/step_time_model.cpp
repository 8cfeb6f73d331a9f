#include "planner/step_time_model.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace baton::planner {

namespace {

StepTimeModel::Coefficients terms_of(const StepShape& s) {
  return {1.0, static_cast<double>(s.prefill_tokens), s.prefill_attention_pairs, static_cast<double>(s.decode_seqs),
          static_cast<double>(s.decode_context_tokens)};
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
              {"rms_rel_error", rms_rel_error},
              {"max_rel_error", max_rel_error},
              {"rel_errors", rel_errors}};
}

StepTimeModel StepTimeModel::constant(double step_s) { return StepTimeModel(Coefficients{step_s, 0, 0, 0, 0}); }

Result<StepTimeModel> StepTimeModel::fit(std::span<const StepSample> samples, FitReport* report) {
  if (samples.size() < 2) {
    return invalid_argument("a step-time fit needs at least 2 measured steps, got {}", samples.size());
  }
  std::vector<Coefficients> rows;
  std::vector<double> b;
  for (const StepSample& s : samples) {
    if (!(s.seconds > 0) || !std::isfinite(s.seconds)) {
      return invalid_argument("measured step '{}' has a step time of {} s: must be positive", s.label, s.seconds);
    }
    // Relative error: divide the row by what was measured.
    Coefficients row = terms_of(s.shape);
    for (double& v : row) v /= s.seconds;
    rows.push_back(row);
    b.push_back(1.0);
  }
  StepTimeModel model(nnls(rows, b));
  if (report != nullptr) {
    *report = FitReport{};
    report->num_samples = static_cast<int>(samples.size());
    double sum_sq = 0;
    for (const StepSample& s : samples) {
      const double rel = (model.step_s(s.shape) - s.seconds) / s.seconds;
      report->rel_errors.push_back(rel);
      sum_sq += rel * rel;
      report->max_rel_error = std::max(report->max_rel_error, std::abs(rel));
    }
    report->rms_rel_error = std::sqrt(sum_sq / static_cast<double>(samples.size()));
  }
  return model;
}

double StepTimeModel::step_s(const StepShape& shape) const {
  const Coefficients t = terms_of(shape);
  double s = 0;
  for (int j = 0; j < kNumTerms; ++j) s += c_[j] * t[j];
  return s;
}

StepTimeModel StepTimeModel::scaled(double factor) const {
  Coefficients c = c_;
  for (double& v : c) v *= factor;
  return StepTimeModel(c);
}

Json StepTimeModel::to_json() const {
  return Json{{"fixed_s", c_[0]},
              {"per_prefill_token_s", c_[1]},
              {"per_attention_pair_s", c_[2]},
              {"per_decode_seq_s", c_[3]},
              {"per_context_token_s", c_[4]}};
}

Result<std::vector<StepSample>> samples_from_profile(const Json& profile, const std::string& model) {
  if (!profile.is_object() || !profile.contains("models") || !profile["models"].is_array()) {
    return invalid_argument("a profile must be a JSON object with a 'models' array (baton profile --json)");
  }
  const Json* entry = nullptr;
  for (const Json& m : profile["models"]) {
    if (!m.is_object()) continue;
    if (model.empty() || (m.contains("model") && m["model"].is_string() && m["model"].get<std::string>() == model)) {
      entry = &m;
      break;
    }
  }
  if (entry == nullptr) return not_found("the profile has no model '{}'", model);
  std::vector<StepSample> out;
  auto number = [](const Json& j, const char* key) -> Result<double> {
    if (!j.is_object() || !j.contains(key) || !j[key].is_number()) {
      return invalid_argument("profile entry lacks a numeric '{}': {}", key, j.dump().substr(0, 200));
    }
    return j[key].get<double>();
  };
  if (entry->contains("decode") && (*entry)["decode"].is_array()) {
    for (const Json& d : (*entry)["decode"]) {
      BATON_ASSIGN_OR_RETURN(double batch, number(d, "batch"));
      BATON_ASSIGN_OR_RETURN(double context, number(d, "context"));
      BATON_ASSIGN_OR_RETURN(double ms, number(d, "step_ms"));
      StepSample s;
      s.shape.decode_seqs = static_cast<int64_t>(batch);
      s.shape.decode_context_tokens = static_cast<int64_t>(batch * context);
      s.seconds = ms / 1000.0;
      s.label = fmt::format("decode batch {}, context {}", batch, context);
      out.push_back(std::move(s));
    }
  }
  if (entry->contains("prefill") && (*entry)["prefill"].is_array()) {
    for (const Json& p : (*entry)["prefill"]) {
      BATON_ASSIGN_OR_RETURN(double tokens, number(p, "tokens"));
      BATON_ASSIGN_OR_RETURN(double ms, number(p, "time_ms"));
      StepSample s;
      s.shape.prefill_tokens = static_cast<int64_t>(tokens);
      s.shape.prefill_attention_pairs = causal_pairs(0, static_cast<int64_t>(tokens));
      s.seconds = ms / 1000.0;
      s.label = fmt::format("prefill {} tokens", tokens);
      out.push_back(std::move(s));
    }
  }
  if (out.empty()) return invalid_argument("the profile's model entry has no decode or prefill measurements");
  return out;
}

}  // namespace baton::planner

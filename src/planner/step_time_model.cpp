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
  // The attention kernels timed alone are per layer: they need the layer count.
  const double layers = entry->contains("num_layers") && (*entry)["num_layers"].is_number()
                            ? (*entry)["num_layers"].get<double>()
                            : 0;
  auto timed_alone = [&](const Json& row, const char* key, double to_s, StepSample whole, StepPart part) {
    if (layers <= 0 || !row.contains(key) || !row[key].is_number()) return;
    whole.part = part;
    whole.seconds = row[key].get<double>() * layers * to_s;
    whole.label += fmt::format(", its attention alone ({})", key);
    out.push_back(std::move(whole));
  };
  if (entry->contains("decode") && (*entry)["decode"].is_array()) {
    for (const Json& d : (*entry)["decode"]) {
      if (d.is_object() && d.contains("skipped")) continue;
      BATON_ASSIGN_OR_RETURN(double batch, number(d, "batch"));
      BATON_ASSIGN_OR_RETURN(double context, number(d, "context"));
      BATON_ASSIGN_OR_RETURN(double ms, number(d, "step_ms"));
      StepSample s;
      s.shape.decode_seqs = static_cast<int64_t>(batch);
      s.shape.decode_context_tokens = static_cast<int64_t>(batch * context);
      s.seconds = ms / 1000.0;
      s.label = fmt::format("decode batch {}, context {}", batch, context);
      timed_alone(d, "attention_us_per_layer", 1e-6, s, StepPart::kDecodeAttention);
      out.push_back(std::move(s));
    }
  }
  if (entry->contains("prefill") && (*entry)["prefill"].is_array()) {
    for (const Json& p : (*entry)["prefill"]) {
      if (p.is_object() && p.contains("skipped")) continue;
      BATON_ASSIGN_OR_RETURN(double tokens, number(p, "tokens"));
      BATON_ASSIGN_OR_RETURN(double ms, number(p, "time_ms"));
      // After `context` tokens already computed (a later chunk of a long prompt); 0: a fresh prompt.
      const double context = p.contains("context") && p["context"].is_number() ? p["context"].get<double>() : 0;
      StepSample s;
      s.shape.prefill_tokens = static_cast<int64_t>(tokens);
      s.shape.prefill_attention_pairs = causal_pairs(static_cast<int64_t>(context), static_cast<int64_t>(tokens));
      s.shape.first_token_seqs = 1;  // the profile's step samples, as a prompt's last chunk does
      s.seconds = ms / 1000.0;
      s.label = context > 0 ? fmt::format("prefill {} tokens after {}", tokens, context)
                            : fmt::format("prefill {} tokens", tokens);
      timed_alone(p, "attention_ms_per_layer", 1e-3, s, StepPart::kPrefillAttention);
      out.push_back(std::move(s));
    }
  }
  if (entry->contains("served_prefill") && (*entry)["served_prefill"].is_array()) {
    for (const Json& p : (*entry)["served_prefill"]) {
      BATON_ASSIGN_OR_RETURN(double tokens, number(p, "prompt_tokens"));
      BATON_ASSIGN_OR_RETURN(double batch, number(p, "batch"));
      BATON_ASSIGN_OR_RETURN(double rps, number(p, "requests_per_s"));
      if (!(tokens >= 1 && batch >= 1 && rps > 0)) {
        return invalid_argument("served_prefill row needs prompt_tokens >= 1, batch >= 1, requests_per_s > 0: {}",
                                p.dump().substr(0, 200));
      }
      const auto n = static_cast<int64_t>(tokens), b = static_cast<int64_t>(batch);
      StepSample s;
      s.shape.prefill_tokens = b * n;
      s.shape.prefill_attention_pairs = static_cast<double>(b) * causal_pairs(0, n);
      s.shape.first_token_seqs = b;
      s.seconds = batch / rps;
      s.label = fmt::format("served prefill, {} prompts of {} tokens a step, {:.1f} req/s", b, n, rps);
      out.push_back(std::move(s));
    }
  }
  if (out.empty()) return invalid_argument("the profile's model entry has no decode or prefill measurements");
  return out;
}

}  // namespace baton::planner

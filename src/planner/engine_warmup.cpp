#include "planner/engine_warmup.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "planner/step_time_model.h"

namespace baton::planner {

int gemm_m_bucket(int m) {
  if (m <= 64) return m;
  int octave = 1;
  while (octave * 2 <= m) octave *= 2;  // octave <= m < 2 * octave
  const int step = octave / 8;
  return (m + step - 1) / step * step;
}

int graph_batch_bucket(int seqs) {
  static const int kBuckets[] = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256};
  for (int b : kBuckets) {
    if (seqs <= b) return b;
  }
  return -1;
}

int graph_blocks_bucket(int max_blocks_per_seq) {
  int b = 16;
  while (b < max_blocks_per_seq) b <<= 1;
  return b;
}

FirstUseModel::FirstUseModel(std::vector<std::pair<double, double>> layer_ms, double head_ms_m1, double copy_gbps)
    : layer_ms_(std::move(layer_ms)),
      head_ms_m1_(head_ms_m1),
      flush_s_(copy_gbps > 0 ? kFlushBytes / (copy_gbps * 1e9) : 0) {
  std::sort(layer_ms_.begin(), layer_ms_.end());
}

double FirstUseModel::layer_s(int m) const {
  if (layer_ms_.empty() || m <= 0) return 0;
  const double x = m;
  if (layer_ms_.size() == 1) return layer_ms_[0].second * std::max(1.0, x / layer_ms_[0].first) / 1e3;
  auto hi = std::lower_bound(layer_ms_.begin(), layer_ms_.end(), std::make_pair(x, 0.0));
  if (hi == layer_ms_.begin()) return layer_ms_.front().second / 1e3;  // below the first: a weight read at least
  if (hi == layer_ms_.end()) hi = std::prev(layer_ms_.end());          // past the last: the last segment's slope
  const auto lo = std::prev(hi);
  const double f = (x - lo->first) / (hi->first - lo->first);
  return std::max(layer_ms_.front().second, lo->second + f * (hi->second - lo->second)) / 1e3;
}

double FirstUseModel::head_s(int m) const {
  // The LM head is one more linear: it scales with m as the layers' do.
  if (layer_ms_.empty() || m <= 0) return 0;
  return head_ms_m1_ / 1e3 * layer_s(m) / layer_s(1);
}

double FirstUseModel::tune_layers_s(int m) const {
  const int candidates = kCandidates + (m <= 8 ? 1 : 0);
  return candidates * (kLaunchesPerCandidate * layer_s(m) + kTimedLaunchesPerCandidate * kLinearsPerLayer * flush_s_);
}

double FirstUseModel::tune_head_s(int m) const {
  const int candidates = kCandidates + (m <= 8 ? 1 : 0);
  return candidates * (kLaunchesPerCandidate * head_s(m) + kTimedLaunchesPerCandidate * flush_s_);
}

double FirstUseModel::first_use_s(const StepDims& step, double step_s, EngineWarmth& warmth) const {
  if (empty() || step.num_tokens <= 0) return 0;
  double cost = 0;
  auto tune = [&](int layers_m, int head_m) {
    if (warmth.layer_buckets.insert(gemm_m_bucket(layers_m)).second) {
      cost += tune_layers_s(layers_m);
      ++warmth.num_tunings;
    }
    if (head_m > 0 && warmth.head_buckets.insert(gemm_m_bucket(head_m)).second) {
      cost += tune_head_s(head_m);
      ++warmth.num_tunings;
    }
  };
  const int batch = graph_batch_bucket(step.num_seqs);
  if (step.num_tokens == step.num_seqs && batch > 0) {
    // A decode-only step replays its graph; a new one is run eagerly first
    // at the padded batch (every row sampled), then captured.
    const std::pair<int, int> key{batch, graph_blocks_bucket(step.max_blocks_per_seq)};
    if (warmth.graphs.insert(key).second) {
      tune(batch, batch);
      cost += step_s;
      ++warmth.num_graphs;
    }
  } else {
    tune(step.num_tokens, step.num_samples);
  }
  warmth.seconds += cost;
  return cost;
}

Json FirstUseModel::to_json() const {
  Json layers = Json::array();
  for (const auto& [m, ms] : layer_ms_) layers.push_back(Json{{"m", m}, {"ms", ms}});
  return Json{{"layer_linears_ms", layers},
              {"lm_head_ms_m1", head_ms_m1_},
              {"candidates", kCandidates},
              {"launches_per_candidate", kLaunchesPerCandidate},
              {"flush_ms", flush_s_ * 1e3}};
}

namespace {

bool is_positive_number(const Json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() && std::isfinite(j[key].get<double>()) &&
         j[key].get<double>() > 0 && j[key].get<double>() < 1e9;
}

}  // namespace

Result<FirstUseModel> first_use_from_profile(const Json& profile, const std::string& model) {
  BATON_ASSIGN_OR_RETURN(const Json* entry, profile_model_entry(profile, model));
  std::map<double, double> layer_ms;  // m -> ms of the four linears (the first row of an m)
  double head_ms = 0;
  auto rows = [&](const char* key) {
    return entry->contains(key) && (*entry)[key].is_array() ? (*entry)[key] : Json::array();
  };
  for (const Json& p : rows("prefill")) {
    if (!p.is_object() || !p.contains("linear_gemms") || !p["linear_gemms"].is_object()) continue;
    const Json& g = p["linear_gemms"];
    if (!g.contains("per_gemm") || !g["per_gemm"].is_array()) continue;
    double m = 0, ms = 0;
    for (const Json& one : g["per_gemm"]) {
      if (!is_positive_number(one, "m") || !is_positive_number(one, "ms")) {
        return invalid_argument("profile prefill row's linear_gemms.per_gemm entry lacks a positive m or ms: {}",
                                one.dump().substr(0, 200));
      }
      m = one["m"].get<double>();
      ms += one["ms"].get<double>();
    }
    if (m > 0) layer_ms.emplace(m, ms);
  }
  for (const Json& d : rows("decode")) {
    if (!d.is_object() || !d.contains("linears_alone") || !d["linears_alone"].is_object()) continue;
    const Json& l = d["linears_alone"];
    if (!l.contains("per_linear") || !l["per_linear"].is_array()) continue;
    double m = 0, ms = 0, head = 0;
    for (const Json& one : l["per_linear"]) {
      if (!is_positive_number(one, "m") || !is_positive_number(one, "us")) {
        return invalid_argument("profile decode row's linears_alone.per_linear entry lacks a positive m or us: {}",
                                one.dump().substr(0, 200));
      }
      m = one["m"].get<double>();
      const double t = one["us"].get<double>() / 1e3;
      if (one.contains("linear") && one["linear"].is_string() && one["linear"].get<std::string>() == "lm_head") {
        head = t;
      } else {
        ms += t;
      }
    }
    if (m > 0 && ms > 0 && layer_ms.count(m) == 0) {
      layer_ms.emplace(m, ms);
      if (head > 0) head_ms = head;
    }
  }
  if (layer_ms.empty()) return FirstUseModel();
  double copy_gbps = 0;
  if (profile.contains("ceilings") && is_positive_number(profile["ceilings"], "copy_gbps"))
    copy_gbps = profile["ceilings"]["copy_gbps"].get<double>();
  return FirstUseModel(std::vector<std::pair<double, double>>(layer_ms.begin(), layer_ms.end()), head_ms, copy_gbps);
}

}  // namespace baton::planner

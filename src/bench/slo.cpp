#include "bench/slo.h"

#include <cmath>
#include <limits>

namespace baton::bench {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

}  // namespace

// The request's own value of a metric (inf when it failed or lacks one).
double request_value(const RequestRecord& r, const SloTarget& t) {
  if (!r.ok) return kInf;
  if (t.metric == "ttft") return r.first_token_s >= 0 ? r.ttft_s() : kInf;
  if (t.metric == "e2e") return r.e2e_s();
  if (t.metric == "tpot") return r.output_tokens >= 2 && r.first_token_s >= 0 ? r.tpot_s() : 0.0;
  // itl: the request's own statistic of its gaps
  auto gaps = r.itl_s();
  if (gaps.empty()) return 0.0;
  auto d = summarize(std::move(gaps));
  auto v = d.statistic(t.statistic);
  return v.is_ok() ? *v : kInf;
}

Result<double> parse_duration_s(const std::string& text) {
  std::string s = trim(text);
  double scale = 0;
  std::string number;
  if (s.ends_with("us")) {
    scale = 1e-6, number = s.substr(0, s.size() - 2);
  } else if (s.ends_with("ms")) {
    scale = 1e-3, number = s.substr(0, s.size() - 2);
  } else if (s.ends_with("s")) {
    scale = 1, number = s.substr(0, s.size() - 1);
  } else {
    return invalid_argument("duration '{}' needs a unit: us, ms or s", text);
  }
  try {
    size_t used = 0;
    double v = std::stod(number, &used);
    if (used != number.size() || !(v > 0) || !std::isfinite(v)) throw std::invalid_argument("x");
    return v * scale;
  } catch (const std::exception&) {
    return invalid_argument("duration '{}' is not a positive number with a unit (us, ms, s)", text);
  }
}

Result<SloSpec> parse_slo(const std::string& text, double min_attainment) {
  SloSpec spec;
  if (!(min_attainment >= 0 && min_attainment <= 1)) {
    return invalid_argument("attainment must be in [0, 1] (got {})", min_attainment);
  }
  spec.min_attainment = min_attainment;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    auto bad = [&](const std::string& why) {
      return invalid_argument("SLO target '{}': {} (expected METRIC:STAT<LIMIT, e.g. ttft:p90<500ms)", item, why);
    };
    auto colon = item.find(':');
    auto lt = item.find('<');
    if (colon == std::string::npos || lt == std::string::npos || lt < colon) return bad("malformed");
    SloTarget t;
    t.text = item;
    t.metric = trim(item.substr(0, colon));
    t.statistic = trim(item.substr(colon + 1, lt - colon - 1));
    std::string limit = item.substr(lt + 1);
    if (!limit.empty() && limit.front() == '=') limit.erase(limit.begin());  // "<=" reads as "<"
    if (t.metric != "ttft" && t.metric != "tpot" && t.metric != "itl" && t.metric != "e2e") {
      return bad("unknown metric '" + t.metric + "' (ttft, tpot, itl, e2e)");
    }
    if (auto st = summarize({1.0}).statistic(t.statistic); !st.is_ok()) return bad(st.status().message());
    auto lim = parse_duration_s(limit);
    if (!lim) return bad(lim.status().message());
    t.limit_s = *lim;
    for (const auto& other : spec.targets) {
      if (other.metric == t.metric && other.statistic == t.statistic) return bad("given twice");
    }
    spec.targets.push_back(std::move(t));
  }
  if (spec.targets.empty() && !text.empty() && trim(text) != "")
    return invalid_argument("SLO '{}' has no target", text);
  return spec;
}

SloReport evaluate_slo(const SloSpec& spec, const std::vector<RequestRecord>& records, double duration_s) {
  SloReport rep;
  std::vector<const RequestRecord*> measured;
  for (const auto& r : records) {
    if (!r.warmup && !r.cancelled) measured.push_back(&r);  // a request the bench cancelled is no evidence
  }
  rep.num_measured = measured.size();
  for (const auto* r : measured) {
    bool good = r->ok;
    for (const auto& t : spec.targets) {
      if (!good) break;
      if (!(request_value(*r, t) < t.limit_s)) good = false;
    }
    if (good) ++rep.num_good;
  }
  rep.attainment = rep.num_measured ? static_cast<double>(rep.num_good) / static_cast<double>(rep.num_measured) : 0;
  rep.goodput_rps = duration_s > 0 ? static_cast<double>(rep.num_good) / duration_s : 0;
  rep.attainment_ok = spec.min_attainment <= 0 || rep.attainment >= spec.min_attainment;
  rep.sustainable = rep.attainment_ok && rep.num_measured > 0;
  double worst = 0;
  for (const auto& t : spec.targets) {
    std::vector<double> values;
    for (const auto* r : measured) {
      if (t.metric == "itl") {
        if (!r->ok) {
          values.push_back(kInf);
          continue;
        }
        auto gaps = r->itl_s();
        values.insert(values.end(), gaps.begin(), gaps.end());
      } else if (t.metric == "tpot") {
        if (!r->ok) values.push_back(kInf);
        else if (r->output_tokens >= 2 && r->first_token_s >= 0) values.push_back(r->tpot_s());
      } else {
        values.push_back(request_value(*r, t));
      }
    }
    TargetResult tr;
    tr.target = t;
    auto d = summarize(std::move(values));
    auto v = d.count ? d.statistic(t.statistic) : Result<double>(kInf);
    tr.value_s = v.is_ok() ? *v : kInf;
    if (std::isnan(tr.value_s)) tr.value_s = kInf;  // inf - inf in an interpolation
    tr.passed = tr.value_s < t.limit_s;
    tr.ratio = tr.value_s / t.limit_s;
    if (!tr.passed) {
      rep.sustainable = false;
      if (tr.ratio > worst) {
        worst = tr.ratio;
        rep.first_broken = t.text;
      }
    }
    rep.targets.push_back(std::move(tr));
  }
  if (rep.first_broken.empty() && !rep.attainment_ok) rep.first_broken = "attainment";
  return rep;
}

Json SloReport::to_json() const {
  Json targets_json = Json::array();
  for (const auto& t : targets) {
    targets_json.push_back({{"target", t.target.text},
                            {"metric", t.target.metric},
                            {"statistic", t.target.statistic},
                            {"limit_ms", t.target.limit_s * 1e3},
                            {"value_ms", std::isfinite(t.value_s) ? Json(t.value_s * 1e3) : Json(nullptr)},
                            {"passed", t.passed}});
  }
  return Json{{"targets", targets_json},    {"num_measured", num_measured}, {"num_good", num_good},
              {"attainment", attainment},   {"goodput_rps", goodput_rps},   {"attainment_ok", attainment_ok},
              {"sustainable", sustainable}, {"first_broken", first_broken}, {"stopped_early", stopped_early},
              {"stop_reason", stop_reason}};
}

}  // namespace baton::bench

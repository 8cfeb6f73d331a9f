#include "bench/slo_watch.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace baton::bench {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Mean targets: sums here and in evaluate_slo add in different orders; stay
// clear of the last bits of rounding.
constexpr double kMeanMargin = 1e-9;

std::string fmt_limit(double s) { return s >= 1 ? fmt::format("{:g} s", s) : fmt::format("{:g} ms", s * 1e3); }

}  // namespace

SloWatch::SloWatch(SloSpec spec, size_t num_measured)
    : spec_(std::move(spec)), num_measured_(num_measured), state_(spec_.targets.size()) {}

// Derivation. n values sorted ascending x[0..n-1]; rank = p/100 * (n-1),
// lo = floor(rank), hi = ceil(rank), frac = rank - lo; the statistic is
// x[lo] + (x[hi] - x[lo]) * frac >= x[lo] (x[hi] >= x[lo], frac >= 0; with
// x[lo] = inf it is NaN, which evaluate_slo reads as inf). If v values are
// >= L, then x[j] >= L for every j >= n - v, so v >= n - lo forces the
// statistic >= L: it fails (pass means < L). With v = n - lo - 1, the others
// at 0 and the violators at exactly L, the statistic is L * frac (frac < 1)
// or 0: it can pass. So k = n - floor(p/100 * (n-1)), the rank computed in
// the same floating-point expression as percentile_sorted(). k(n) never
// decreases with n (floor grows by at most 1 when n grows by 1), so a count
// that is only bounded above by n (TPOT: requests of < 2 tokens add no value)
// may use k(n).
size_t SloWatch::violators_needed(double p, size_t n) {
  if (n == 0) return 1;
  p = std::clamp(p, 0.0, 100.0);
  double rank = p / 100.0 * static_cast<double>(n - 1);
  auto lo = static_cast<size_t>(std::floor(rank));
  return n - lo;
}

std::optional<double> SloWatch::percentile_of(const std::string& statistic) {
  if (statistic == "median") return 50.0;
  if (statistic == "min") return 0.0;
  if (statistic == "max") return 100.0;
  if (statistic.size() >= 2 && statistic[0] == 'p') {
    try {
      size_t used = 0;
      double p = std::stod(statistic.substr(1), &used);
      if (used == statistic.size() - 1 && p >= 0 && p <= 100) return p;
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

void SloWatch::on_finished(const RequestRecord& r) {
  if (r.warmup) return;
  ++num_finished_;
  bool good = r.ok;
  for (size_t i = 0; i < spec_.targets.size(); ++i) {
    const SloTarget& t = spec_.targets[i];
    if (good && !(request_value(r, t) < t.limit_s)) good = false;
    if (t.metric == "itl") continue;
    double v = 0;
    if (!r.ok) {
      v = kInf;
    } else if (t.metric == "tpot") {
      if (!(r.output_tokens >= 2 && r.first_token_s >= 0)) continue;  // no TPOT value
      v = r.tpot_s();
    } else {
      v = request_value(r, t);
    }
    if (v >= t.limit_s) ++state_[i].num_violators;
    state_[i].sum_s += v;
  }
  if (!good) ++num_bad_;
}

std::optional<SloBreak> SloWatch::certainly_broken(const std::vector<InFlightSample>& in_flight) const {
  const size_t n = num_measured_;
  if (n == 0) return std::nullopt;
  for (size_t i = 0; i < spec_.targets.size(); ++i) {
    const SloTarget& t = spec_.targets[i];
    if (t.metric == "itl") continue;
    size_t violators = state_[i].num_violators;
    double sum = state_[i].sum_s;
    if (t.metric == "ttft" || t.metric == "e2e") {
      for (const auto& f : in_flight) {
        double lower = t.metric == "ttft" && f.ttft_s >= 0 ? f.ttft_s : f.elapsed_s;
        if (lower >= t.limit_s) ++violators;
        sum += lower;
      }
    }
    if (auto p = percentile_of(t.statistic)) {
      size_t k = violators_needed(*p, n);
      if (violators >= k) {
        return SloBreak{
            t.text,
            fmt::format("{}: {} of {} measured requests already failed or took >= {} ({}), so its {} is over the limit "
                        "whatever the other {} do (it takes {})",
                        t.text, violators, n, fmt_limit(t.limit_s), t.metric, t.statistic, n - violators, k)};
      }
    } else if (t.statistic == "mean") {
      double lower_mean = sum / static_cast<double>(n);
      if (lower_mean >= t.limit_s * (1 + kMeanMargin)) {
        return SloBreak{
            t.text,
            std::isfinite(lower_mean)
                ? fmt::format("{}: the {} of {} measured requests is already at least {} (a failed request counts "
                              "as infinitely slow)",
                              t.text, t.metric, n, fmt_limit(lower_mean))
                : fmt::format("{}: a measured request failed, and a failed request counts as infinitely slow, so the "
                              "{} of {} is over any limit",
                              t.text, t.metric, n)};
      }
    }
  }
  if (spec_.min_attainment > 0) {
    size_t bad = num_bad_;
    for (const auto& f : in_flight) {
      for (const auto& t : spec_.targets) {
        double lower = t.metric == "ttft"  ? (f.ttft_s >= 0 ? f.ttft_s : f.elapsed_s)
                       : t.metric == "e2e" ? f.elapsed_s
                                           : -1;
        if (lower >= 0 && lower >= t.limit_s) {
          ++bad;
          break;
        }
      }
    }
    bad = std::min(bad, n);
    double best = static_cast<double>(n - bad) / static_cast<double>(n);
    if (best < spec_.min_attainment) {
      return SloBreak{
          "attainment",
          fmt::format("attainment: {} of {} measured requests already failed or missed a limit, so attainment "
                      "is at most {:.4f} < {:.4f}",
                      bad, n, best, spec_.min_attainment)};
    }
  }
  return std::nullopt;
}

}  // namespace baton::bench

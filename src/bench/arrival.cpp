#include "bench/arrival.h"

#include <cmath>
#include <random>

namespace baton::bench {

Result<ArrivalKind> parse_arrival_kind(const std::string& name) {
  if (name == "poisson") return ArrivalKind::kPoisson;
  if (name == "gamma") return ArrivalKind::kGamma;
  if (name == "constant") return ArrivalKind::kConstant;
  return invalid_argument("unknown arrival process '{}' (use poisson, gamma or constant)", name);
}

const char* arrival_kind_name(ArrivalKind kind) {
  switch (kind) {
    case ArrivalKind::kPoisson: return "poisson";
    case ArrivalKind::kGamma: return "gamma";
    case ArrivalKind::kConstant: return "constant";
  }
  return "?";
}

Status validate(const ArrivalSpec& spec) {
  if (!(spec.rate > 0)) return invalid_argument("request rate must be > 0 (got {})", spec.rate);
  if (spec.kind == ArrivalKind::kGamma && !(spec.burstiness > 0 && std::isfinite(spec.burstiness))) {
    return invalid_argument("burstiness must be a finite number > 0 (got {})", spec.burstiness);
  }
  return Status::ok();
}

namespace {

// Draws gaps one at a time; the same seed gives the same sequence.
class GapSource {
 public:
  explicit GapSource(const ArrivalSpec& spec)
      : spec_(spec),
        rng_(spec.seed ^ 0x9e3779b97f4a7c15ULL),
        exp_(spec.rate),
        gamma_(spec.burstiness, 1.0 / (spec.rate * spec.burstiness)) {}
  double next() {
    if (std::isinf(spec_.rate)) return 0.0;
    switch (spec_.kind) {
      case ArrivalKind::kPoisson: return exp_(rng_);
      case ArrivalKind::kGamma: return gamma_(rng_);
      case ArrivalKind::kConstant: return 1.0 / spec_.rate;
    }
    return 0.0;
  }

 private:
  ArrivalSpec spec_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> exp_;
  std::gamma_distribution<double> gamma_;
};

ArrivalSpec sanitized(ArrivalSpec spec) {
  if (std::isinf(spec.rate)) spec.burstiness = 1.0;  // keeps the distributions well-formed
  return spec;
}

}  // namespace

Result<std::vector<double>> arrival_times(const ArrivalSpec& spec, size_t num_requests) {
  BATON_RETURN_IF_ERROR(validate(spec));
  GapSource gaps(sanitized(spec));
  std::vector<double> out;
  out.reserve(num_requests);
  double t = 0;
  for (size_t i = 0; i < num_requests; ++i) {
    if (i > 0) t += gaps.next();
    out.push_back(t);
  }
  return out;
}

Result<std::vector<double>> arrival_times_within(const ArrivalSpec& spec, double duration_s) {
  BATON_RETURN_IF_ERROR(validate(spec));
  if (!(duration_s > 0)) return invalid_argument("duration must be > 0 s (got {})", duration_s);
  if (std::isinf(spec.rate)) return invalid_argument("a duration needs a finite rate");
  GapSource gaps(sanitized(spec));
  std::vector<double> out{0.0};
  for (;;) {
    double t = out.back() + gaps.next();
    if (t >= duration_s) break;
    out.push_back(t);
    if (out.size() > 100'000'000) return invalid_argument("more than 1e8 arrivals in {} s", duration_s);
  }
  return out;
}

}  // namespace baton::bench

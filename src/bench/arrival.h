// Open-loop arrival processes. Inter-arrival gaps have mean 1/rate:
//   poisson:  exponential gaps (coefficient of variation 1)
//   gamma:    gamma gaps with shape = burstiness and scale = 1/(rate*burstiness)
//             (vLLM's convention: burstiness 1 is Poisson, < 1 burstier, > 1 smoother;
//             the gaps' squared coefficient of variation is 1/burstiness)
//   constant: every 1/rate seconds
// The first request arrives at t = 0. An infinite rate sends everything at 0.
// The same seed gives the same schedule.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace baton::bench {

enum class ArrivalKind { kPoisson, kGamma, kConstant };

Result<ArrivalKind> parse_arrival_kind(const std::string& name);
const char* arrival_kind_name(ArrivalKind kind);

struct ArrivalSpec {
  ArrivalKind kind = ArrivalKind::kPoisson;
  double rate = 1.0;        // requests per second (> 0, may be infinity)
  double burstiness = 1.0;  // gamma shape (> 0); only for kGamma
  uint64_t seed = 0;
};

Status validate(const ArrivalSpec& spec);

// The first `num_requests` arrival times, seconds from the start.
Result<std::vector<double>> arrival_times(const ArrivalSpec& spec, size_t num_requests);
// Every arrival time before `duration_s` (at least one: t = 0).
Result<std::vector<double>> arrival_times_within(const ArrivalSpec& spec, double duration_s);

}  // namespace baton::bench

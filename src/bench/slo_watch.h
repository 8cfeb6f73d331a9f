// Early stop of a benchmark run whose SLO verdict is already certainly FAIL.
//
// A SloWatch knows the SLO and the number N of measured (non-warm-up)
// requests of the run. It is fed each finished measured request (ok or
// failed) and, on demand, the measured requests still in flight (time since
// send, first token if any). certainly_broken() names a target that fails
// whatever the requests not yet finished (in flight or not yet sent) do, or
// nullopt. It never says broken for a run that could still pass:
//   - a certain violation of a target is a request whose value for that
//     metric is >= the limit however the run ends: a failed request (+inf for
//     every metric); TTFT: a first token >= limit after the send, or no first
//     token yet and elapsed >= limit; E2E: finished with e2e >= limit, or in
//     flight with elapsed >= limit; TPOT: only finished requests;
//   - percentile target pXX: broken when the violators alone force the
//     statistic (computed as evaluate_slo does) to >= the limit even if every
//     other value is 0 (see violators_needed());
//   - mean target: sum of certain lower bounds / N >= limit;
//   - min attainment: (N - certainly bad requests) / N < min_attainment.
// ITL targets are never declared broken early: a request's number of gaps is
// unknown until it ends, so the population of the statistic is unknown.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "bench/metrics.h"
#include "bench/slo.h"

namespace baton::bench {

// One measured request in flight, as the load generator sees it now.
struct InFlightSample {
  double elapsed_s = 0;  // now - send
  double ttft_s = -1;    // first token - send (-1: none yet)
};

// A target that is certainly broken: its text ("ttft:p90<2s", or
// "attainment") and a sentence that starts with it and says why.
struct SloBreak {
  std::string target;
  std::string reason;
};

class SloWatch {
 public:
  SloWatch(SloSpec spec, size_t num_measured);

  // A measured request finished (record.ok or not). Warm-up records are ignored.
  void on_finished(const RequestRecord& record);
  // The target (and why) that is certainly broken now, or nullopt.
  std::optional<SloBreak> certainly_broken(const std::vector<InFlightSample>& in_flight) const;

  size_t num_finished() const { return num_finished_; }

  // The smallest number k of values >= limit among n that makes the
  // percentile p (linear interpolation, as percentile_sorted()) >= limit
  // whatever the other n - k values are (>= 0). n == 0 -> 1.
  static size_t violators_needed(double p, size_t n);
  // The percentile of a statistic name ("median" -> 50, "p99.9" -> 99.9);
  // nullopt for mean and anything else.
  static std::optional<double> percentile_of(const std::string& statistic);

 private:
  struct TargetState {
    size_t num_violators = 0;  // finished requests certainly >= limit
    double sum_s = 0;          // finished requests' values (mean targets)
  };

  SloSpec spec_;
  size_t num_measured_;
  size_t num_finished_ = 0;
  size_t num_bad_ = 0;              // finished requests that are not good (attainment)
  std::vector<TargetState> state_;  // one per spec_.targets
};

}  // namespace baton::bench

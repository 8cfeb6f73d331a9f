// Latency SLOs and goodput. A spec such as "ttft:p90<500ms,tpot:p90<40ms,e2e:p99<20s"
// is a list of targets METRIC:STATISTIC<LIMIT with METRIC in ttft, tpot, itl, e2e,
// STATISTIC in mean, median, pNN[.N], LIMIT with a unit us, ms or s.
//   percentile target: the statistic over all measured requests is below the
//     limit; a failed request counts as an infinitely slow one
//   per request: a request is good when it succeeded and each of its own values
//     is below every limit (its TTFT, TPOT, E2E; for itl, its own statistic of
//     its gaps); attainment = good / measured; goodput = good / duration
//   a rate is sustainable when every target holds and, if a minimum attainment
//     is set, attainment >= it
//   requests the bench cancelled itself (an early stop) are not measured: they
//   are no evidence either way
#pragma once

#include <string>
#include <vector>

#include "bench/metrics.h"
#include "common/json.h"

namespace baton::bench {

struct SloTarget {
  std::string metric;     // ttft | tpot | itl | e2e
  std::string statistic;  // mean | median | pNN
  double limit_s = 0;
  std::string text;  // as written, e.g. "ttft:p90<500ms"
};

struct SloSpec {
  std::vector<SloTarget> targets;
  double min_attainment = 0;  // 0: not required
  bool empty() const { return targets.empty() && min_attainment <= 0; }
};

// A request's own value of a target's metric, as the per-request (good or
// not) check reads it: inf when it failed; tpot 0 below 2 tokens; itl its own
// statistic of its gaps (0 without gaps).
double request_value(const RequestRecord& r, const SloTarget& t);

Result<SloSpec> parse_slo(const std::string& text, double min_attainment = 0);
// "500ms" -> 0.5, "20s" -> 20, "150us" -> 0.00015.
Result<double> parse_duration_s(const std::string& text);

struct TargetResult {
  SloTarget target;
  double value_s = 0;  // the statistic measured (inf when nothing succeeded; JSON null)
  bool passed = false;
  double ratio = 0;  // value / limit: > 1 breaks
};

struct SloReport {
  std::vector<TargetResult> targets;
  size_t num_measured = 0, num_good = 0;
  double attainment = 0;
  double goodput_rps = 0;
  bool attainment_ok = true;
  bool sustainable = false;
  std::string first_broken;  // the target furthest over its limit ("" if none; "attainment")
  // The run was stopped once its verdict was certainly FAIL (SloWatch): the
  // figures cover the requests it sent, and first_broken is the certain one.
  bool stopped_early = false;
  std::string stop_reason;
  Json to_json() const;
};

SloReport evaluate_slo(const SloSpec& spec, const std::vector<RequestRecord>& records, double duration_s);

}  // namespace baton::bench

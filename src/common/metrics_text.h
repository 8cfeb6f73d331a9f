// Reading the Prometheus text exposition format (what MetricsRegistry::render
// writes, and what every `baton serve` and `baton proxy` answers on /metrics):
// each sample's value by metric name, summed over its label sets. Used by
// whoever watches instances from outside (the sweep's metrics sampler).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace baton {

// "name{a=\"x\"} 3" and "name 3" lines; '#' lines and blank lines are skipped.
// Samples of one name with different labels add up (a histogram's _bucket,
// _sum and _count are names of their own). A line that is not a sample is an
// error that quotes it.
Result<std::map<std::string, double>> sum_metrics_by_name(std::string_view text);

}  // namespace baton

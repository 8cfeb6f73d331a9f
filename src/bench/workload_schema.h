// The one schema of the workload options: each option's YAML key, CLI flag,
// type, default, help and range is written once, here. `baton bench` binds
// its flags from it (cli/workload_flags.h) and `baton sweep` reads an
// experiment's workloads from it (deploy/experiment.cpp), so both take the
// same options with the same defaults and turn them into WorkloadOptions by
// the same rules (to_workload_options).
//
// The defaults are WorkloadSettings' member initializers; in particular
// num_requests is 200 for both commands (`baton sweep` used 100 before).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "bench/slo.h"
#include "bench/workload.h"
#include "common/json.h"
#include "common/status.h"

namespace baton::bench {

// The options as a user writes them (text where the value has a syntax).
struct WorkloadSettings {
  std::string kind = "random";
  std::string input_len = "512";
  std::string output_len = "128";
  size_t num_requests = 200;
  double duration_s = 0;
  std::string arrival = "poisson";
  double burstiness = 1.0;
  size_t prefix_groups = 8;
  double prefix_hit_rate = 0.5;
  int turns = 4;
  double think_time_s = 1.0;
  std::string trace;
  std::string trace_format = "azure";
  double time_scale = 1.0;
  std::string prompt_format = "ids";
  int64_t vocab_size = 0;  // 0: from the server (bench) or the deployment's model (sweep)
  uint64_t seed = 0;
  size_t max_concurrency = 0;
  size_t warmup = 0;
  double warmup_s = 0;
  std::string slo;
  double attainment = 0;
  std::set<std::string> given;  // the keys the user set (a default does not count)
};

// seed (uint64_t) binds as a size_t field: the two are one type here.
static_assert(std::is_same_v<uint64_t, size_t>);
using SettingField = std::variant<std::string WorkloadSettings::*, double WorkloadSettings::*,
                                  size_t WorkloadSettings::*, int WorkloadSettings::*, int64_t WorkloadSettings::*>;

struct WorkloadOption {
  const char* key;   // YAML key: "input_len"
  const char* flag;  // CLI flag: "--input-len"
  SettingField field;
  const char* help;
  double min = -std::numeric_limits<double>::infinity();  // numeric options: the range, inclusive
  double max = std::numeric_limits<double>::infinity();
};

// Every option, in the order `--help` lists them.
const std::vector<WorkloadOption>& workload_options();

// How errors name an option: by its CLI flag or by its YAML key.
enum class OptionNames { kFlag, kKey };

// The options as the load generator takes them. The arrival rate is not a
// workload option (the caller sets it, or the search); a trace given without
// a kind makes the workload a trace; a duration given without a number of
// requests sends for that long. Checks each numeric option's range and each
// text option's syntax; validate(WorkloadOptions) checks the rest.
Result<WorkloadOptions> to_workload_options(const WorkloadSettings& settings, OptionNames names);

// Every option's value, keyed by its YAML key (for a result's record of its settings).
Json settings_json(const WorkloadSettings& settings);

// The SLO the settings name (slo, attainment).
Result<SloSpec> settings_slo(const WorkloadSettings& settings, OptionNames names);

}  // namespace baton::bench

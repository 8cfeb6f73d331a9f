// A deployment simulated request by request: arrivals from the bench's own
// workload generators, routing over instances, per instance the engine's own
// Scheduler and KvCacheManager driven by a step-time model (SimInstance),
// and for PD the KV pull between a prefill and a decode instance timed by a
// transfer model. Its output is one bench RequestRecord per request, judged
// by the bench's own SLO code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/metrics.h"
#include "bench/workload.h"
#include "common/json.h"
#include "common/status.h"
#include "planner/sim_instance.h"
#include "planner/step_time_model.h"

namespace baton::planner {

// Time to pull a request's KV from its prefill instance.
struct TransferModel {
  double latency_s = 0;            // per pull: connect, lease check, first byte
  double bytes_per_s = 0;          // 0: instantaneous
  int64_t kv_bytes_per_token = 0;  // all layers
  double seconds(int64_t num_tokens) const;
};

// The router's policies. kPrefixAware: rendezvous hashing of the prompt's
// start (the router hashes its first 256 characters; the simulation, the
// prompt's first segment), skipping an instance far busier than the least
// loaded, as router/routing_policy.cpp does.
enum class SimPolicy { kRoundRobin, kLeastLoaded, kPrefixAware };
Result<SimPolicy> parse_sim_policy(const std::string& name);  // the router's names

struct DeploymentSpec {
  std::string name;
  int num_agg = 0;  // agg replicas (a PD deployment has none)
  int num_prefill = 0;
  int num_decode = 0;
  SimInstanceOptions agg, prefill, decode;  // per role (their `role` is set by the simulator)
  SimPolicy policy = SimPolicy::kRoundRobin;
  double router_hop_s = 0;  // added per hop the router makes (agg: 1, PD: 2)
  bool is_pd() const { return num_prefill > 0; }
  Status validate() const;
};

struct SimOptions {
  bool record_chunks = false;   // per-token times (ITL targets need them; memory grows with tokens)
  int64_t vocab_size = 151936;  // for the prompts' token ids (prefix sharing is by segment)
  size_t num_warmup = 0;        // not measured, as the bench (bench::warmup_flags)
  double warmup_s = 0;
};

struct InstanceStats {
  std::string role;
  int64_t num_steps = 0;
  int64_t num_preemptions = 0;
  double busy_fraction = 0;  // of the simulated time
};

struct SimResult {
  std::vector<bench::RequestRecord> records;  // in workload order
  double duration_s = 0;                      // first arrival .. last completion
  std::vector<InstanceStats> instances;
  Json to_json() const;
};

Result<SimResult> simulate(const DeploymentSpec& deployment, const bench::Workload& workload,
                           const StepTimeModel& model, const TransferModel& transfer, const SimOptions& options = {});

}  // namespace baton::planner

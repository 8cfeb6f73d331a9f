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
// start, skipping an instance far busier than the least loaded, as
// router/routing_policy.cpp does: the key is the first 256 characters of the
// prompt as the bench sends it (a JSON array of token ids, or the text), and
// an instance's score is XXH3(url, seed = XXH3(key)). With the instances'
// URLs (DeploymentSpec) the simulated router picks what the real one picked
// for the same prompt.
enum class SimPolicy { kRoundRobin, kLeastLoaded, kPrefixAware };
Result<SimPolicy> parse_sim_policy(const std::string& name);  // the router's names

// The prefix-aware router's key of a prompt: its first 256 characters as sent.
std::string routing_key(const std::vector<bench::Segment>& prompt, int64_t vocab_size, bench::PromptFormat format);
// Its rendezvous score of an instance for a key's hash (XXH3 of the key).
uint64_t rendezvous_score(uint64_t key_hash, const std::string& url);
uint64_t routing_key_hash(const std::string& key);

struct DeploymentSpec {
  std::string name;
  int num_agg = 0;  // agg replicas (a PD deployment has none)
  int num_prefill = 0;
  int num_decode = 0;
  SimInstanceOptions agg, prefill, decode;  // per role (their `role` is set by the simulator)
  SimPolicy policy = SimPolicy::kRoundRobin;
  double router_hop_s = 0;  // added per hop the router makes (agg: 1, PD: 2)
  // The router's URL of each instance (agg or prefill, then decode), as the
  // prefix-aware score hashes it; empty: made-up ones ("http://instance-I").
  std::vector<std::string> front_urls, decode_urls;
  bool is_pd() const { return num_prefill > 0; }
  Status validate() const;
};

struct SimOptions {
  bool record_chunks = false;   // per-token times (ITL targets need them; memory grows with tokens)
  int64_t vocab_size = 151936;  // for the prompts' token ids (prefix sharing is by segment)
  bench::PromptFormat prompt_format = bench::PromptFormat::kTokenIds;  // how the bench sends prompts (routing keys)
  size_t num_warmup = 0;  // not measured, as the bench (bench::warmup_flags)
  double warmup_s = 0;
  // Cold processes (engine_warmup.h): with both set, instance i pays its
  // first uses of shapes against (*warmth)[i] (resized to the instance
  // count; instances in order agg or prefill, then decode). Unset: warm.
  const FirstUseModel* first_use = nullptr;
  std::vector<EngineWarmth>* warmth = nullptr;
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

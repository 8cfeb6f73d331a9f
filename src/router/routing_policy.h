// Which instance of a role gets a request: round_robin, least_loaded
// (fewest requests in flight) or prefix_aware (requests whose prompts share a
// prefix go to the same instance, so its prefix cache hits; rendezvous
// hashing keeps the assignment stable as instances join and leave, and an
// instance far busier than the least loaded one is skipped).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "router/instance_pool.h"

namespace baton::router {

struct RouteKey {
  std::string prefix;  // the prompt's leading text or token ids, serialised
};

class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;
  // Picks one of `candidates` (non-empty); `exclude` (may be null) is avoided
  // when another candidate exists (the retry of a failed request).
  virtual InstancePtr pick(const std::vector<InstancePtr>& candidates, const RouteKey& key,
                           const Instance* exclude) = 0;
};

// "round_robin", "least_loaded", "prefix_aware"; an unknown name is an error.
Result<std::unique_ptr<RoutingPolicy>> make_routing_policy(const std::string& name);

// The bytes of a prompt that prefix_aware hashes: the first `max_chars`
// characters of the serialised prompt (text, or token ids joined by commas).
std::string prefix_key_of(const std::string& serialized_prompt, size_t max_chars = 256);

}  // namespace baton::router

// Which instance of a role gets a request: round_robin, least_loaded
// (fewest requests in flight), kv_aware (DESIGN.md "KV-aware routing": the
// instance whose prefix cache holds the longest part of the prompt, as its
// KV events say, weighed against its load) or prefix_aware (the older
// guess without events: rendezvous hashing of the prompt's first 256
// characters, kept for the planner's simulator and the example specs).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "router/instance_pool.h"
#include "router/kv_index.h"

namespace baton::router {

// What kv_aware found for the instance it picked (and the best on offer).
struct RouteNote {
  bool consulted = false;       // kv_aware ran with a tokenized prompt
  int overlap_tokens = 0;       // prompt tokens cached on the pick
  int best_overlap_tokens = 0;  // the most any candidate had cached
  bool synced = false;          // the pick's KV state was known
  KvLoad load;                  // the pick's reported load
};

struct RouteKey {
  std::string prefix;      // prefix_aware: the prompt's leading text or token ids, serialised
  PromptHashes prompt;     // kv_aware: the prompt's token ids (unknown when the router cannot tokenize)
  mutable RouteNote note;  // filled by kv_aware's pick
};

struct KvAwareOptions {
  // A request in flight on an instance weighs as much as this many uncached
  // prompt tokens (the load term of the cost).
  double load_weight_tokens = 256.0;
};

class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;
  // Picks one of `candidates` (non-empty); `exclude` (may be null) is avoided
  // when another candidate exists (the retry of a failed request).
  virtual InstancePtr pick(const std::vector<InstancePtr>& candidates, const RouteKey& key,
                           const Instance* exclude) = 0;
};

// "round_robin", "least_loaded", "prefix_aware", "kv_aware" (reads `index`,
// which must outlive the policy); an unknown name is an error.
Result<std::unique_ptr<RoutingPolicy>> make_routing_policy(const std::string& name, const KvIndex* index = nullptr,
                                                           KvAwareOptions kv_options = {});

// The bytes of a prompt that prefix_aware hashes: the first `max_chars`
// characters of the serialised prompt (text, or token ids joined by commas).
std::string prefix_key_of(const std::string& serialized_prompt, size_t max_chars = 256);

}  // namespace baton::router

#include "router/routing_policy.h"

#include <xxhash.h>

#include <algorithm>
#include <limits>

namespace baton::router {
namespace {

std::vector<InstancePtr> without(const std::vector<InstancePtr>& candidates, const Instance* exclude) {
  if (!exclude || candidates.size() < 2) return candidates;
  std::vector<InstancePtr> out;
  for (const auto& c : candidates) {
    if (c.get() != exclude) out.push_back(c);
  }
  return out.empty() ? candidates : out;
}

class RoundRobin : public RoutingPolicy {
 public:
  InstancePtr pick(const std::vector<InstancePtr>& candidates, const RouteKey&, const Instance* exclude) override {
    auto c = without(candidates, exclude);
    return c[next_.fetch_add(1) % c.size()];
  }

 private:
  std::atomic<uint64_t> next_{0};
};

class LeastLoaded : public RoutingPolicy {
 public:
  InstancePtr pick(const std::vector<InstancePtr>& candidates, const RouteKey&, const Instance* exclude) override {
    auto c = without(candidates, exclude);
    // Ties rotate, so equal load spreads evenly.
    size_t start = next_.fetch_add(1) % c.size();
    InstancePtr best;
    int best_load = std::numeric_limits<int>::max();
    for (size_t i = 0; i < c.size(); ++i) {
      const auto& inst = c[(start + i) % c.size()];
      int load = inst->num_in_flight.load();
      if (load < best_load) {
        best = inst;
        best_load = load;
      }
    }
    return best;
  }

 private:
  std::atomic<uint64_t> next_{0};
};

class PrefixAware : public RoutingPolicy {
 public:
  InstancePtr pick(const std::vector<InstancePtr>& candidates, const RouteKey& key, const Instance* exclude) override {
    auto c = without(candidates, exclude);
    if (key.prefix.empty()) return least_loaded_.pick(c, key, nullptr);
    // Rendezvous hashing: the instance with the highest hash(prefix, url) wins.
    uint64_t prefix_hash = XXH3_64bits(key.prefix.data(), key.prefix.size());
    InstancePtr best;
    uint64_t best_score = 0;
    int min_load = std::numeric_limits<int>::max();
    for (const auto& inst : c) min_load = std::min(min_load, inst->num_in_flight.load());
    for (const auto& inst : c) {
      // Skip an instance far busier than the least loaded one (hot prefix).
      if (inst->num_in_flight.load() > 2 * min_load + kLoadSlack) continue;
      uint64_t score = XXH3_64bits_withSeed(inst->url.data(), inst->url.size(), prefix_hash);
      if (!best || score > best_score) {
        best = inst;
        best_score = score;
      }
    }
    return best ? best : least_loaded_.pick(c, key, nullptr);
  }

 private:
  static constexpr int kLoadSlack = 8;
  LeastLoaded least_loaded_;
};

// cost = uncached prompt tokens + load_weight_tokens * requests in flight;
// the cheapest wins, ties rotate. An instance's load is the larger of what
// it reported (waiting + running) and the router's own in-flight count
// (which the report may not show yet).
class KvAware : public RoutingPolicy {
 public:
  KvAware(const KvIndex& index, KvAwareOptions options) : index_(index), options_(options) {}

  InstancePtr pick(const std::vector<InstancePtr>& candidates, const RouteKey& key, const Instance* exclude) override {
    auto c = without(candidates, exclude);
    const size_t start = next_.fetch_add(1) % c.size();
    const int prompt_tokens = key.prompt.num_tokens();
    InstancePtr best;
    double best_cost = 0;
    RouteNote note;
    int best_overlap = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      const auto& inst = c[(start + i) % c.size()];
      const KvView v = index_.view(inst->url, key.prompt);
      const int overlap = v.overlap_blocks * v.block_size;
      best_overlap = std::max(best_overlap, overlap);
      const int load = std::max(v.load.num_waiting + v.load.num_running, inst->num_in_flight.load());
      const double cost = (prompt_tokens - overlap) + options_.load_weight_tokens * load;
      if (!best || cost < best_cost) {
        best = inst;
        best_cost = cost;
        note.overlap_tokens = overlap;
        note.synced = v.synced;
        note.load = v.load;
      }
    }
    note.consulted = key.prompt.known();
    note.best_overlap_tokens = best_overlap;
    key.note = note;
    return best;
  }

 private:
  const KvIndex& index_;
  const KvAwareOptions options_;
  std::atomic<uint64_t> next_{0};
};

}  // namespace

Result<std::unique_ptr<RoutingPolicy>> make_routing_policy(const std::string& name, const KvIndex* index,
                                                           KvAwareOptions kv_options) {
  if (name == "round_robin") return std::unique_ptr<RoutingPolicy>(new RoundRobin());
  if (name == "least_loaded") return std::unique_ptr<RoutingPolicy>(new LeastLoaded());
  if (name == "prefix_aware") return std::unique_ptr<RoutingPolicy>(new PrefixAware());
  if (name == "kv_aware") {
    if (!index) return invalid_argument("the kv_aware routing policy needs the router's KV index");
    if (!(kv_options.load_weight_tokens >= 0)) {
      return invalid_argument("--kv-load-weight must be >= 0, got {}", kv_options.load_weight_tokens);
    }
    return std::unique_ptr<RoutingPolicy>(new KvAware(*index, kv_options));
  }
  return invalid_argument("unknown routing policy '{}' (expected round_robin, least_loaded, prefix_aware, kv_aware)",
                          name);
}

std::string prefix_key_of(const std::string& serialized_prompt, size_t max_chars) {
  return serialized_prompt.substr(0, std::min(max_chars, serialized_prompt.size()));
}

}  // namespace baton::router

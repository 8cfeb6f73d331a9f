// The instances a router sends requests to, by role, with their health and
// load. Instances join and leave at run time (static list, or etcd).
// Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace baton::router {

enum class PoolRole { kReplica, kPrefill, kDecode };
const char* pool_role_name(PoolRole role);
// An instance's role name (prefill, decode, agg) as a pool role; nullopt for another.
std::optional<PoolRole> pool_role_of(const std::string& instance_role);

struct Instance {
  explicit Instance(std::string url_, PoolRole role_) : url(std::move(url_)), role(role_) {}
  const std::string url;  // http://host:port
  const PoolRole role;
  std::atomic<bool> healthy{true};
  std::atomic<int> num_in_flight{0};
  std::atomic<uint64_t> num_requests{0};
  mutable std::atomic<uint64_t> num_errors{0};
  std::atomic<int> num_failed_checks{0};
};

using InstancePtr = std::shared_ptr<Instance>;

// Counts a request in flight on an instance for as long as it lives.
class InFlightGuard {
 public:
  explicit InFlightGuard(InstancePtr instance) : instance_(std::move(instance)) {
    instance_->num_in_flight.fetch_add(1);
    instance_->num_requests.fetch_add(1);
  }
  ~InFlightGuard() { instance_->num_in_flight.fetch_sub(1); }
  InFlightGuard(const InFlightGuard&) = delete;
  InFlightGuard& operator=(const InFlightGuard&) = delete;
  const InstancePtr& instance() const { return instance_; }

 private:
  InstancePtr instance_;
};

class InstancePool {
 public:
  // Adds an instance (no-op if the url is already there with that role).
  InstancePtr add(const std::string& url, PoolRole role);
  // Removes it; requests in flight keep their pointer.
  void remove(const std::string& url, PoolRole role);
  // Healthy instances of a role, in the order they were added.
  std::vector<InstancePtr> healthy(PoolRole role) const;
  std::vector<InstancePtr> all() const;
  InstancePtr find(const std::string& url, PoolRole role) const;

  // Health bookkeeping: one failed check takes an instance out of rotation;
  // one passing check brings it back.
  void report_check(const InstancePtr& instance, bool ok);

 private:
  mutable std::mutex mu_;
  std::vector<InstancePtr> instances_;
};

}  // namespace baton::router

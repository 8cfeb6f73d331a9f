#include "router/instance_pool.h"

#include <algorithm>

namespace baton::router {

std::optional<PoolRole> pool_role_of(const std::string& instance_role) {
  if (instance_role == "prefill") return PoolRole::kPrefill;
  if (instance_role == "decode") return PoolRole::kDecode;
  if (instance_role == "agg") return PoolRole::kReplica;
  return std::nullopt;
}

const char* pool_role_name(PoolRole role) {
  switch (role) {
    case PoolRole::kReplica: return "replica";
    case PoolRole::kPrefill: return "prefill";
    case PoolRole::kDecode: return "decode";
  }
  return "?";
}

InstancePtr InstancePool::add(const std::string& url, PoolRole role) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& inst : instances_) {
    if (inst->url == url && inst->role == role) return inst;
  }
  instances_.push_back(std::make_shared<Instance>(url, role));
  return instances_.back();
}

void InstancePool::remove(const std::string& url, PoolRole role) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(instances_, [&](const InstancePtr& i) { return i->url == url && i->role == role; });
}

std::vector<InstancePtr> InstancePool::healthy(PoolRole role) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<InstancePtr> out;
  for (const auto& inst : instances_) {
    if (inst->role == role && inst->healthy.load()) out.push_back(inst);
  }
  return out;
}

std::vector<InstancePtr> InstancePool::all() const {
  std::lock_guard<std::mutex> lock(mu_);
  return instances_;
}

InstancePtr InstancePool::find(const std::string& url, PoolRole role) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& inst : instances_) {
    if (inst->url == url && inst->role == role) return inst;
  }
  return nullptr;
}

void InstancePool::report_check(const InstancePtr& instance, bool ok) {
  if (ok) {
    instance->num_failed_checks.store(0);
    instance->healthy.store(true);
  } else {
    instance->num_failed_checks.fetch_add(1);
    instance->healthy.store(false);
  }
}

}  // namespace baton::router

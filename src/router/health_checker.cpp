#include "router/health_checker.h"

#include "common/log.h"
#include "http/http_client.h"

namespace baton::router {

HealthChecker::HealthChecker(InstancePool& pool, double interval_s, double timeout_s)
    : pool_(pool), interval_s_(interval_s), timeout_s_(timeout_s) {}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
}

void HealthChecker::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HealthChecker::check_all() {
  for (const auto& inst : pool_.all()) {
    auto r = http::fetch(inst->url + "/health", "GET", {}, timeout_s_);
    bool ok = r.is_ok() && r->status == 200;
    bool was = inst->healthy.load();
    pool_.report_check(inst, ok);
    if (was && !ok) {
      BATON_LOG_WARN("{} {} left the rotation: {}", pool_role_name(inst->role), inst->url,
                     r.is_ok() ? "status " + std::to_string(r->status) : r.status().message());
    } else if (!was && ok) {
      BATON_LOG_INFO("{} {} is back in the rotation", pool_role_name(inst->role), inst->url);
    }
    const std::optional<PoolRole> role = ok ? pool_role_of(r->header("X-Baton-Role")) : std::nullopt;
    if (role && *role != inst->role && pool_.find(inst->url, inst->role)) {
      BATON_LOG_INFO("{} now reports role {}: moving it from {}", inst->url, pool_role_name(*role),
                     pool_role_name(inst->role));
      pool_.remove(inst->url, inst->role);
      pool_.add(inst->url, *role);
    }
  }
}

void HealthChecker::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    check_all();
    lock.lock();
    cv_.wait_for(lock, std::chrono::duration<double>(interval_s_), [this] { return stop_; });
  }
}

}  // namespace baton::router

#include "pd/role_kv_connector.h"

#include <algorithm>
#include <utility>

namespace baton {

RoleKvConnector::RoleKvConnector(std::shared_ptr<PdKvConnector> initial) : current_(std::move(initial)) {}

RoleKvConnector::~RoleKvConnector() = default;

std::shared_ptr<PdKvConnector> RoleKvConnector::get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

std::shared_ptr<PdKvConnector> RoleKvConnector::current() const { return get(); }

PdRole RoleKvConnector::role() const {
  auto c = get();
  return c ? c->role() : PdRole::kAgg;
}

std::shared_ptr<PdKvConnector> RoleKvConnector::swap(std::shared_ptr<PdKvConnector> next) {
  std::function<void()> wakeup;
  std::shared_ptr<PdKvConnector> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (next) {
      next->set_wakeup(wakeup_);
      if (registry_) next->attach_metrics(*registry_);
    }
    old = std::exchange(current_, std::move(next));
    if (old) retired_.push_back(old);
    wakeup = wakeup_;
  }
  if (wakeup) wakeup();  // the engine polls the old one once more
  return old;
}

void RoleKvConnector::attach_metrics(MetricsRegistry& registry) {
  std::shared_ptr<PdKvConnector> c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    registry_ = &registry;
    c = current_;
  }
  if (c) c->attach_metrics(registry);
}

void RoleKvConnector::stop() {
  std::vector<std::shared_ptr<PdKvConnector>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all = retired_;
    if (current_) all.push_back(current_);
  }
  for (auto& c : all) c->stop();
}

Status RoleKvConnector::release_lease(const Json& params) {
  auto c = get();
  if (!c || c->role() != PdRole::kPrefill) {
    return not_found("no such lease: this instance's role is {}, it holds no KV leases",
                     pd_role_name(c ? c->role() : PdRole::kAgg));
  }
  return c->release_lease(params);
}

void RoleKvConnector::set_wakeup(std::function<void()> wakeup) {
  std::vector<std::shared_ptr<PdKvConnector>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wakeup_ = wakeup;
    all = retired_;
    if (current_) all.push_back(current_);
  }
  for (auto& c : all) c->set_wakeup(wakeup);
}

bool RoleKvConnector::has_events() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!to_release_.empty()) return true;
  if (current_ && current_->has_events()) return true;
  return std::any_of(retired_.begin(), retired_.end(), [](const auto& c) { return c->has_events(); });
}

bool RoleKvConnector::has_timers() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (current_ && current_->has_timers()) return true;
  return std::any_of(retired_.begin(), retired_.end(), [](const auto& c) { return c->has_timers(); });
}

void RoleKvConnector::give_back(std::vector<int> block_ids) {
  if (block_ids.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  to_release_.push_back(std::move(block_ids));
}

Json RoleKvConnector::on_prefill_finished(const std::string& request_id, int num_prompt_tokens,
                                          std::vector<int> block_ids) {
  if (auto c = get()) return c->on_prefill_finished(request_id, num_prompt_tokens, std::move(block_ids));
  give_back(std::move(block_ids));  // agg: nobody will read them
  return Json();
}

Json RoleKvConnector::on_prefill_progress(const std::string& request_id, int num_prompt_tokens, int num_computed_tokens,
                                          const std::vector<int>& block_ids) {
  if (auto c = get()) return c->on_prefill_progress(request_id, num_prompt_tokens, num_computed_tokens, block_ids);
  return Json();
}

std::vector<int> RoleKvConnector::on_prefill_stopped(const std::string& request_id, const std::string& why,
                                                     std::vector<int> block_ids) {
  if (auto c = get()) return c->on_prefill_stopped(request_id, why, std::move(block_ids));
  return block_ids;
}

Status RoleKvConnector::check_transfer_params(const Json& params) const {
  if (auto c = get()) return c->check_transfer_params(params);
  return failed_precondition("this instance's role is agg: it does not pull KV (do_remote_prefill)");
}

Status RoleKvConnector::start_load(const KvLoadRequest& load) {
  if (auto c = get()) return c->start_load(load);
  return failed_precondition("this instance's role is agg: it cannot pull KV");
}

void RoleKvConnector::cancel_load(const std::string& request_id, std::vector<int> block_ids) {
  if (auto c = get()) return c->cancel_load(request_id, std::move(block_ids));
  give_back(std::move(block_ids));
}

KvLoadFailurePolicy RoleKvConnector::load_failure_policy() const {
  auto c = get();
  return c ? c->load_failure_policy() : KvLoadFailurePolicy::kFail;
}

void RoleKvConnector::abandon_load(const std::string& request_id, const Json& kv_transfer_params) {
  if (auto c = get()) c->abandon_load(request_id, kv_transfer_params);
}

KvConnectorEvents RoleKvConnector::poll() {
  KvConnectorEvents ev;
  std::vector<std::shared_ptr<PdKvConnector>> sources;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ev.blocks_to_release.swap(to_release_);
    sources = retired_;
    if (current_) sources.push_back(current_);
  }
  for (auto& c : sources) {
    KvConnectorEvents e = c->poll();
    for (auto& b : e.blocks_to_release) ev.blocks_to_release.push_back(std::move(b));
    for (auto& l : e.loads_done) ev.loads_done.push_back(std::move(l));
  }
  // A retired connector that holds nothing more is forgotten (RoleSwitcher
  // stopped it when it swapped it out).
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(retired_, [](const auto& c) { return quiet(*c); });
  return ev;
}

}  // namespace baton

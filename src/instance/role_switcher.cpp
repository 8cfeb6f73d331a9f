#include "instance/role_switcher.h"

#include <chrono>

#include "common/log.h"

namespace baton::instance {

namespace {

constexpr double kMaxDrainTimeoutS = 3600.0;
constexpr auto kQuietPoll = std::chrono::milliseconds(10);  // connectors signal no change: look this often

// What a request of `kind` is called in messages.
const char* request_kind(PdRole kind) {
  switch (kind) {
    case PdRole::kPrefill: return "do_remote_decode (prefill)";
    case PdRole::kDecode: return "do_remote_prefill (decode)";
    case PdRole::kAgg: break;
  }
  return "plain";
}

}  // namespace

PdRole role_needed(const Json& kv_transfer_params) {
  if (wants_remote_decode(kv_transfer_params)) return PdRole::kPrefill;
  if (wants_remote_prefill(kv_transfer_params)) return PdRole::kDecode;
  return PdRole::kAgg;
}

std::shared_ptr<RoleSwitcher> RoleSwitcher::create(std::shared_ptr<RoleKvConnector> connector, ConnectorFactory factory,
                                                   double default_drain_timeout_s) {
  return std::shared_ptr<RoleSwitcher>(
      new RoleSwitcher(std::move(connector), std::move(factory), default_drain_timeout_s));
}

RoleSwitcher::RoleSwitcher(std::shared_ptr<RoleKvConnector> connector, ConnectorFactory factory,
                           double default_drain_timeout_s)
    : connector_(std::move(connector)),
      factory_(std::move(factory)),
      default_drain_timeout_s_(default_drain_timeout_s),
      role_(connector_->role()) {}

RoleSwitcher::~RoleSwitcher() { stop(); }

void RoleSwitcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RoleSwitcher::set_on_flip(std::function<void(PdRole)> on_flip) {
  std::lock_guard<std::mutex> lock(mu_);
  on_flip_ = std::move(on_flip);
}

void RoleSwitcher::attach_metrics(MetricsRegistry& registry) {
  std::lock_guard<std::mutex> lock(mu_);
  metrics_ = &registry;
}

PdRole RoleSwitcher::role() const {
  std::lock_guard<std::mutex> lock(mu_);
  return role_;
}

Result<std::shared_ptr<void>> RoleSwitcher::admit(const Json& kv_transfer_params) {
  const PdRole kind = role_needed(kv_transfer_params);
  std::lock_guard<std::mutex> lock(mu_);
  if (kind != PdRole::kAgg) {
    if (switch_ && switch_->state == "draining") {
      return unavailable("this instance is switching its role from {} to {}: it takes no {} request now",
                         pd_role_name(switch_->from), pd_role_name(switch_->to), request_kind(kind));
    }
    if (kind != role_) {
      return unavailable("this instance's role is {}: a {} request needs a {} instance", pd_role_name(role_),
                         request_kind(kind), pd_role_name(kind));
    }
  }
  ++live_[static_cast<int>(kind)];
  std::weak_ptr<RoleSwitcher> weak = weak_from_this();
  // The deleter runs when the request's last output has gone.
  return std::shared_ptr<void>(static_cast<void*>(nullptr), [weak, kind](void*) {
    if (auto self = weak.lock()) self->release(kind);
  });
}

void RoleSwitcher::release(PdRole kind) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --live_[static_cast<int>(kind)];
  }
  cv_.notify_all();
}

Result<Json> RoleSwitcher::request_switch(const Json& body) {
  if (!body.is_object()) return invalid_argument("the body must be a JSON object: {{\"role\": \"prefill\"}}");
  for (const auto& item : body.items()) {
    if (item.key() != "role" && item.key() != "drain_timeout_s") {
      return invalid_argument("unknown field '{}' (expected role, drain_timeout_s)", item.key());
    }
  }
  auto r = body.find("role");
  if (r == body.end() || !r->is_string()) {
    return invalid_argument("'role' is required: a string, agg, prefill or decode");
  }
  const std::string name = r->get<std::string>();
  Result<PdRole> to = parse_pd_role(name);
  if (!to.is_ok()) return invalid_argument("'role' must be agg, prefill or decode, got '{}'", name);
  double timeout_s = default_drain_timeout_s_;
  if (auto t = body.find("drain_timeout_s"); t != body.end()) {
    if (!t->is_number() || !(t->get<double>() > 0 && t->get<double>() <= kMaxDrainTimeoutS)) {
      return invalid_argument("'drain_timeout_s' must be a number of seconds in (0, {}], got {}", kMaxDrainTimeoutS,
                              t->dump());
    }
    timeout_s = t->get<double>();
  }
  std::lock_guard<std::mutex> one_at_a_time(request_mu_);
  PdRole from;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (switch_ && switch_->state == "draining") {
      return failed_precondition("a switch from {} to {} is in flight ({:.1f} s so far); wait for it to end",
                                 pd_role_name(switch_->from), pd_role_name(switch_->to), switch_->watch.elapsed_s());
    }
    if (stopping_) return unavailable("the instance is stopping");
    if (*to == role_) return invalid_argument("the instance's role is already {}", name);
    from = role_;
  }
  // The new role's connector first: one that cannot be built (a KV port in
  // use) fails the request, before anything drains.
  std::shared_ptr<PdKvConnector> next;
  if (*to != PdRole::kAgg) {
    auto made = factory_(*to);
    if (!made.is_ok()) return made.status().with_context(fmt::format("building the {} KV connector", name));
    next = std::move(made).value();
  }
  if (thread_.joinable()) thread_.join();  // the last switch's, already ended
  std::lock_guard<std::mutex> lock(mu_);
  switch_.emplace();
  switch_->from = from;
  switch_->to = *to;
  switch_->state = "draining";
  switch_->drain_timeout_s = timeout_s;
  BATON_LOG_INFO("role switch {} -> {}: draining (at most {} s)", pd_role_name(from), name, timeout_s);
  thread_ = std::thread([this, next, timeout_s] { run(next, timeout_s); });
  return status_locked();
}

std::string RoleSwitcher::drain_outstanding() const {
  std::string out;
  const int live = switch_->from == PdRole::kAgg ? 0 : live_[static_cast<int>(switch_->from)];
  if (live > 0) out = fmt::format("{} {} requests still running", live, request_kind(switch_->from));
  std::shared_ptr<PdKvConnector> old = connector_->current();
  if (old && !RoleKvConnector::quiet(*old)) {
    const PdStats s = old->stats();
    if (!out.empty()) out += ", ";
    out += old->role() == PdRole::kPrefill ? fmt::format("{} KV leases held", s.num_leases)
                                           : std::string("KV pulls running");
  }
  return out;
}

void RoleSwitcher::run(std::shared_ptr<PdKvConnector> next, double drain_timeout_s) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(drain_timeout_s);
  std::string outstanding = drain_outstanding();
  while (!outstanding.empty() && !stopping_ && std::chrono::steady_clock::now() < deadline) {
    cv_.wait_for(lock, kQuietPoll);
    outstanding = drain_outstanding();
  }
  Switch& sw = *switch_;
  sw.elapsed_s = sw.watch.elapsed_s();
  if (metrics_) {
    metrics_
        ->counter("baton:role_switches_total", "Role switches of this instance, by outcome (done or failed)",
                  {{"from", pd_role_name(sw.from)},
                   {"to", pd_role_name(sw.to)},
                   {"result", outstanding.empty() ? "done" : "failed"}})
        .inc();
  }
  if (!outstanding.empty()) {
    sw.state = "failed";
    sw.error = stopping_ ? "the instance is stopping"
                         : fmt::format("the drain did not finish within {} s: {}", drain_timeout_s, outstanding);
    ++num_failed_switches_;
    BATON_LOG_WARN("role switch {} -> {} failed: {}; the role stays {}", pd_role_name(sw.from), pd_role_name(sw.to),
                   sw.error, pd_role_name(sw.from));
    lock.unlock();
    if (next) next->stop();
    return;
  }
  // Nothing of the old role is left: the engine's calls go to the new
  // connector from here on; the old one (quiet) stops.
  std::shared_ptr<PdKvConnector> old = connector_->swap(next);
  if (old) old->stop();
  role_ = sw.to;
  sw.state = "done";
  ++num_switches_;
  BATON_LOG_INFO("role switch {} -> {} done after {:.3f} s", pd_role_name(sw.from), pd_role_name(sw.to), sw.elapsed_s);
  const PdRole now = sw.to;
  std::function<void(PdRole)> on_flip = on_flip_;
  lock.unlock();
  if (on_flip) on_flip(now);
}

Json RoleSwitcher::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_locked();
}

Json RoleSwitcher::status_locked() const {
  Json j = {{"role", pd_role_name(role_)},
            {"switching", switch_ && switch_->state == "draining"},
            {"num_switches", num_switches_},
            {"num_failed_switches", num_failed_switches_},
            {"requests_running",
             {{"prefill", live_[static_cast<int>(PdRole::kPrefill)]},
              {"decode", live_[static_cast<int>(PdRole::kDecode)]},
              {"plain", live_[static_cast<int>(PdRole::kAgg)]}}}};
  if (!switch_) return j;
  const Switch& sw = *switch_;
  Json s = {{"from", pd_role_name(sw.from)},
            {"to", pd_role_name(sw.to)},
            {"state", sw.state},
            {"elapsed_s", sw.state == "draining" ? sw.watch.elapsed_s() : sw.elapsed_s},
            {"drain_timeout_s", sw.drain_timeout_s}};
  if (sw.state == "draining") s["waiting_for"] = drain_outstanding();
  if (!sw.error.empty()) s["error"] = sw.error;
  j["switch"] = std::move(s);
  return j;
}

}  // namespace baton::instance

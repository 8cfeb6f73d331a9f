#include "router/role_control_loop.h"

#include <chrono>

#include <fmt/format.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "http/http_client.h"

namespace baton::router {

namespace {

constexpr double kStatusPollS = 0.05;     // how often a switch's progress is read
constexpr double kInFlightPollS = 0.01;   // how often the router's own requests to it are counted
constexpr double kAnswerTimeoutS = 10.0;  // one admin exchange
constexpr double kGraceS = 10.0;          // beyond the drain timeout before a switch counts as lost

}  // namespace

RoleControlLoop::RoleControlLoop(InstancePool& pool, const KvIndex& index, MetricsRegistry& metrics,
                                 RoleControlOptions options, std::string instance_api_key)
    : pool_(pool), index_(index), metrics_(metrics), controller_(options), api_key_(std::move(instance_api_key)) {}

RoleControlLoop::~RoleControlLoop() { stop(); }

void RoleControlLoop::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    while (!wait_or_stop(controller_.options().interval_s)) step();
  });
}

void RoleControlLoop::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool RoleControlLoop::wait_or_stop(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return stop_; });
}

std::vector<RoleSignal> RoleControlLoop::signals() const {
  std::vector<RoleSignal> out;
  for (PoolRole role : {PoolRole::kPrefill, PoolRole::kDecode}) {
    for (const InstancePtr& inst : pool_.healthy(role)) {
      KvView v = index_.view(inst->url, PromptHashes());
      out.push_back({inst->url, role, v.synced, v.load});
    }
  }
  return out;
}

void RoleControlLoop::step() {
  std::optional<RoleMove> move = controller_.decide(signals(), monotonic_s());
  if (!move) return;
  carry_out(*move);
  controller_.switch_finished(monotonic_s());
}

std::string RoleControlLoop::carry_out(const RoleMove& move) {
  const char* from = pool_role_name(move.from);
  const char* to = pool_role_name(move.to);
  BATON_LOG_INFO("role control: moving {} from {} to {} ({})", move.url, from, to, move.detail);
  Stopwatch watch;
  InstancePtr inst = pool_.find(move.url, move.from);
  pool_.remove(move.url, move.from);
  // The requests this router already sent it under the old role end first
  // (bounded by the drain timeout): none arrives after the instance has
  // begun to refuse them. The instance's own drain covers the rest (leases).
  const double limit_s = controller_.options().drain_timeout_s;
  while (inst && inst->num_in_flight.load() > 0 && watch.elapsed_s() < limit_s) {
    if (wait_or_stop(kInFlightPollS)) break;
  }
  auto [result, why] = switch_instance(move);
  if (result == "done") {
    pool_.add(move.url, move.to);
    BATON_LOG_INFO("role control: {} is now {} (switch took {:.3f} s)", move.url, to, watch.elapsed_s());
  } else {
    pool_.add(move.url, move.from);
    BATON_LOG_WARN("role control: {} stays {}: switch to {} {}: {}", move.url, from, to, result, why);
  }
  metrics_
      .counter("baton:router_role_switches_total", "Instances the role controller moved between roles",
               {{"from", from}, {"to", to}, {"reason", move.reason}, {"result", result}})
      .inc();
  return result;
}

std::pair<std::string, std::string> RoleControlLoop::switch_instance(const RoleMove& move) {
  auto call = [&](const std::string& method, const std::string& body) {
    auto url = http::parse_url(move.url + "/v1/admin/role");
    if (!url.is_ok()) return Result<http::Response>(url.status());
    http::Request req;
    req.method = method;
    req.body = body;
    req.timeout_s = kAnswerTimeoutS;
    if (!api_key_.empty()) req.headers.push_back({"Authorization", "Bearer " + api_key_});
    return http::fetch(*url, std::move(req));
  };
  const double drain_timeout_s = controller_.options().drain_timeout_s;
  Json body = {{"role", pool_role_name(move.to)}, {"drain_timeout_s", drain_timeout_s}};
  auto started = call("POST", body.dump());
  if (!started.is_ok()) return {"lost", started.status().message()};
  if (started->status != 202) return {"refused", fmt::format("status {}: {}", started->status, started->body)};
  Stopwatch watch;
  while (watch.elapsed_s() < drain_timeout_s + kGraceS) {
    if (wait_or_stop(kStatusPollS)) return {"lost", "the router is stopping"};
    auto got = call("GET", "");
    if (!got.is_ok() || got->status != 200) continue;  // look again: one lost answer is no verdict
    Json j = Json::parse(got->body, nullptr, false);
    if (j.is_discarded() || !j.contains("switch") || !j["switch"].is_object()) continue;
    // An instance's answer is input: fields of other types count as no answer (look again).
    const auto state = json_get<std::string>(j["switch"], "state", "");
    if (!state.is_ok()) continue;
    if (*state == "done") return {"done", ""};
    if (*state == "failed") {
      const auto error = json_get<std::string>(j["switch"], "error", "");
      return {"failed", error.is_ok() ? *error : "(an error that is no string)"};
    }
  }
  return {"lost", fmt::format("no verdict within {} s", drain_timeout_s + kGraceS)};
}

}  // namespace baton::router

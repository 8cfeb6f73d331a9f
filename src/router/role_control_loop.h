// The router's role controller at work (`baton proxy --role-control`;
// docs/routing.md "Roles that follow the load"): every interval it reads
// each prefill and decode instance's load from the KV index, asks the
// RoleController for a move, and carries one out:
//
//   1. the instance leaves the pool under its old role (no new request of
//      that role is routed to it), and the requests this router has in
//      flight on it finish (at most the drain timeout);
//   2. POST /v1/admin/role {"role": NEW, "drain_timeout_s"} on the instance
//      (with the instances' API key);
//   3. GET /v1/admin/role until the switch is done or failed;
//   4. the instance rejoins the pool under its new role (done) or its old
//      one (failed, refused, or no answer).
//
// Every switch is logged and counted in the router's /metrics as
// baton:router_role_switches_total{from, to, reason, result}.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "common/metrics_registry.h"
#include "router/instance_pool.h"
#include "router/kv_index.h"
#include "router/role_controller.h"

namespace baton::router {

class RoleControlLoop {
 public:
  RoleControlLoop(InstancePool& pool, const KvIndex& index, MetricsRegistry& metrics, RoleControlOptions options,
                  std::string instance_api_key = {});
  ~RoleControlLoop();  // stop()
  RoleControlLoop(const RoleControlLoop&) = delete;
  RoleControlLoop& operator=(const RoleControlLoop&) = delete;

  void start();
  // Ends the loop; a switch being watched is left to finish on the instance
  // (its rejoin is skipped). Idempotent.
  void stop();
  // One look (and, if the controller says so, one whole switch).
  void step();

  // The outcome of one switch: done, failed (the drain timed out on the
  // instance), refused (the instance said no) or lost (no answer).
  std::string carry_out(const RoleMove& move);

 private:
  std::vector<RoleSignal> signals() const;
  // POST then GET /v1/admin/role until the switch ends; "" when done, else
  // the result label and why.
  std::pair<std::string, std::string> switch_instance(const RoleMove& move);
  bool wait_or_stop(double seconds);

  InstancePool& pool_;
  const KvIndex& index_;
  MetricsRegistry& metrics_;
  RoleController controller_;
  const std::string api_key_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace baton::router

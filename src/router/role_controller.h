// The decisions of the router's role controller (docs/routing.md "Roles
// that follow the load"), apart from any I/O so that a test drives it with
// synthetic load signals. Each side's pressure is the mean over its
// instances (those whose KV event stream is synced) of
//   num_waiting + kv_usage_weight * kv_usage
// (the load the KV events carry). When one side's pressure stays above the
// other's by more than `margin` for `hold_s` without a break, one instance
// of the other side (its least loaded) moves over: hysteresis. Never the
// last instance of a side; one switch in flight at a time; after a switch
// ends, `cooldown_s` before the next decision starts to hold.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv/kv_event_publisher.h"
#include "router/instance_pool.h"

namespace baton::router {

struct RoleControlOptions {
  double margin = 2.0;            // pressure units (waiting requests per instance)
  double hold_s = 10.0;           // how long the margin must hold
  double cooldown_s = 30.0;       // after a switch ends, before the next may start holding
  double kv_usage_weight = 4.0;   // a full KV cache counts as this many waiting requests
  double interval_s = 0.5;        // how often the control loop looks
  double drain_timeout_s = 60.0;  // each switch's drain limit on the instance

  Status check() const;  // each in range, naming the one that is not
};

// One instance as the controller sees it.
struct RoleSignal {
  std::string url;
  PoolRole role = PoolRole::kPrefill;  // kPrefill or kDecode
  bool known = false;                  // its load is synced
  KvLoad load;
};

struct RoleMove {
  std::string url;
  PoolRole from = PoolRole::kDecode, to = PoolRole::kPrefill;
  std::string reason;  // a metric label: prefill_queue (prefill side over) or decode_queue
  std::string detail;  // for the log: the pressures and settings
};

class RoleController {
 public:
  explicit RoleController(RoleControlOptions options) : options_(options) {}

  // One look at the instances at time now_s (seconds, monotonic): the move
  // to make now, if any. A move starts a switch in flight: no other until
  // switch_finished().
  std::optional<RoleMove> decide(const std::vector<RoleSignal>& signals, double now_s);
  void switch_finished(double now_s);

  bool switch_in_flight() const { return in_flight_; }
  const RoleControlOptions& options() const { return options_; }

 private:
  const RoleControlOptions options_;
  int direction_ = 0;   // +1: prefill side over (a decode should move), -1: decode side over, 0: neither
  double since_s_ = 0;  // when direction_ began to hold
  bool in_flight_ = false;
  std::optional<double> last_end_s_;
};

}  // namespace baton::router

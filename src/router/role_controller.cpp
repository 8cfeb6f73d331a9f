#include "router/role_controller.h"

#include <fmt/format.h>

namespace baton::router {

Status RoleControlOptions::check() const {
  if (!(margin >= 0)) return invalid_argument("--role-margin must be >= 0, got {}", margin);
  if (!(hold_s >= 0)) return invalid_argument("--role-hold-s must be >= 0, got {}", hold_s);
  if (!(cooldown_s >= 0)) return invalid_argument("--role-cooldown-s must be >= 0, got {}", cooldown_s);
  if (!(kv_usage_weight >= 0)) return invalid_argument("--role-kv-usage-weight must be >= 0, got {}", kv_usage_weight);
  if (!(interval_s > 0 && interval_s <= 60)) {
    return invalid_argument("--role-interval-s must be in (0, 60], got {}", interval_s);
  }
  if (!(drain_timeout_s > 0 && drain_timeout_s <= 3600)) {
    return invalid_argument("--role-drain-timeout-s must be in (0, 3600], got {}", drain_timeout_s);
  }
  return Status::ok();
}

namespace {

struct Side {
  int num_instances = 0;  // known or not
  int num_known = 0;
  double pressure_sum = 0;
  const RoleSignal* least_loaded = nullptr;  // among the known
  double pressure() const { return num_known > 0 ? pressure_sum / num_known : 0.0; }
};

}  // namespace

std::optional<RoleMove> RoleController::decide(const std::vector<RoleSignal>& signals, double now_s) {
  if (in_flight_) return std::nullopt;
  if (last_end_s_ && now_s - *last_end_s_ < options_.cooldown_s) {
    direction_ = 0;
    return std::nullopt;
  }
  Side prefill, decode;
  for (const RoleSignal& s : signals) {
    Side& side = s.role == PoolRole::kPrefill ? prefill : decode;
    ++side.num_instances;
    if (!s.known) continue;
    ++side.num_known;
    side.pressure_sum += s.load.num_waiting + options_.kv_usage_weight * s.load.kv_usage;
    auto busy = [](const RoleSignal& r) { return r.load.num_waiting + r.load.num_running; };
    if (!side.least_loaded || busy(s) < busy(*side.least_loaded)) side.least_loaded = &s;
  }
  if (prefill.num_known == 0 || decode.num_known == 0) {
    direction_ = 0;  // a side without a synced load: nothing to compare
    return std::nullopt;
  }
  const double diff = prefill.pressure() - decode.pressure();
  const int want = diff > options_.margin ? 1 : diff < -options_.margin ? -1 : 0;
  if (want != direction_) {
    direction_ = want;
    since_s_ = now_s;
  }
  if (want == 0 || now_s - since_s_ < options_.hold_s) return std::nullopt;
  Side& donor = want > 0 ? decode : prefill;
  if (donor.num_instances <= 1) return std::nullopt;  // never the last of a side
  RoleMove move;
  move.url = donor.least_loaded->url;
  move.from = want > 0 ? PoolRole::kDecode : PoolRole::kPrefill;
  move.to = want > 0 ? PoolRole::kPrefill : PoolRole::kDecode;
  move.reason = want > 0 ? "prefill_queue" : "decode_queue";
  move.detail = fmt::format("{} pressure {:.2f} over {} {:.2f} by more than {} for {:.1f} s", pool_role_name(move.to),
                            want > 0 ? prefill.pressure() : decode.pressure(), pool_role_name(move.from),
                            want > 0 ? decode.pressure() : prefill.pressure(), options_.margin, now_s - since_s_);
  in_flight_ = true;
  direction_ = 0;
  return move;
}

void RoleController::switch_finished(double now_s) {
  in_flight_ = false;
  last_end_s_ = now_s;
  direction_ = 0;
}

}  // namespace baton::router

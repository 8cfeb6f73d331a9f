#include "router/disagg_decider.h"

#include <algorithm>

namespace baton::router {

Result<DisaggMode> parse_disagg_mode(const std::string& name) {
  if (name == "always") return DisaggMode::kAlways;
  if (name == "conditional") return DisaggMode::kConditional;
  if (name == "auto") return DisaggMode::kAuto;
  return invalid_argument("--disagg {}: expected always, conditional or auto", name);
}

namespace {

DisaggDecision conditional(const DisaggOptions& o, const DisaggInputs& in, int uncached) {
  if (uncached <= o.max_local_prefill_tokens) return {true, "short", uncached};
  if (in.prefill_synced && in.prefill_load.num_waiting > o.max_prefill_queue) return {true, "prefill_queue", uncached};
  return {false, "long", uncached};
}

}  // namespace

DisaggDecision decide_prefill_place(const DisaggOptions& o, const DisaggInputs& in) {
  if (o.mode == DisaggMode::kAlways) return {false, "always", 0};
  if (!in.prompt_known) return {false, "untokenized", 0};
  const int uncached = std::max(0, in.prompt_tokens - in.decode_overlap_tokens);
  if (o.mode == DisaggMode::kAuto && in.prefill_synced && in.decode_synced &&
      in.prefill_load.prefill_tokens_per_s > 0 && in.decode_load.prefill_tokens_per_s > 0) {
    const double local_s = uncached / in.decode_load.prefill_tokens_per_s;
    const double remote_wait_s = in.prefill_load.waiting_prompt_tokens / in.prefill_load.prefill_tokens_per_s + o.hop_s;
    return {local_s <= remote_wait_s, local_s <= remote_wait_s ? "auto_local" : "auto_remote", uncached};
  }
  return conditional(o, in, uncached);
}

}  // namespace baton::router

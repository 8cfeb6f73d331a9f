// Conditional disaggregation (DESIGN.md "Conditional disaggregation"): per
// PD request, prefill on a prefill instance and pull the KV (remote), or let
// the chosen decode instance prefill it itself, as an agg instance would
// (local). A short or mostly cached prompt never pays the hop.
//
//   always:      remote, every request (the plain PD flow).
//   conditional: local when the prompt's uncached tokens on the decode
//                instance are at most max_local_prefill_tokens, or when the
//                prefill instance has more than max_prefill_queue requests
//                waiting; remote otherwise (Dynamo's disaggregated router
//                rule).
//   auto:        local when prefilling the uncached tokens on the decode
//                instance takes no longer than the request would wait to
//                start a remote prefill: uncached / decode's measured prompt
//                throughput <= prefill's queued prompt tokens / its measured
//                prompt throughput + hop_s. Until both throughputs are
//                measured, the conditional rule decides.
// A prompt the router could not tokenize goes remote.
#pragma once

#include <string>

#include "common/status.h"
#include "kv/kv_event_publisher.h"

namespace baton::router {

enum class DisaggMode { kAlways, kConditional, kAuto };
Result<DisaggMode> parse_disagg_mode(const std::string& name);  // always | conditional | auto

struct DisaggOptions {
  DisaggMode mode = DisaggMode::kAlways;
  int max_local_prefill_tokens = 512;
  int max_prefill_queue = 8;
  double hop_s = 0.03;  // auto: what a remote prefill adds (two exchanges and the KV pull)
};

struct DisaggInputs {
  bool prompt_known = false;
  int prompt_tokens = 0;
  int decode_overlap_tokens = 0;  // cached on the chosen decode instance
  bool prefill_synced = false;    // the prefill instance's load is known
  KvLoad prefill_load;
  bool decode_synced = false;
  KvLoad decode_load;
};

struct DisaggDecision {
  bool local = false;
  const char* reason = "";  // a metric label: always, untokenized, short, prefill_queue, long, auto_local, auto_remote
  int uncached_tokens = 0;
};

DisaggDecision decide_prefill_place(const DisaggOptions& options, const DisaggInputs& in);

}  // namespace baton::router

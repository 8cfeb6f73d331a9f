// Workloads: the list of requests a run sends, with planned prompt and output
// lengths and arrival times. Prompts are recipes (segments of deterministic
// pseudo-random tokens keyed by a 64-bit key), materialized when a request is
// sent, so that a long trace costs little memory. Equal keys give equal tokens:
// that is how shared prefixes (prefix workload, multiturn history, Mooncake
// hash ids) reach the server's prefix cache.
//   random:    input and output lengths uniform in their ranges
//   prefix:    every prompt = one of G group prefixes + a unique suffix; the
//              prefix is round(hit_rate * input_len) tokens, so the token-level
//              prefix-cache hit rate tends to hit_rate (first use of a group misses)
//   multiturn: sessions start at the arrival process's times; each has N turns;
//              turn k's prompt is the whole conversation so far plus a new user
//              turn; turn k+1 is sent think_time after turn k completes. With
//              text prompts the history holds the server's real answers; with
//              token ids (which the API does not return) each earlier answer is
//              a stand-in of its planned length
//   trace:     lengths and times from a trace (timestamps * time_scale); Mooncake
//              hash ids become equal 512-token blocks
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/arrival.h"
#include "bench/trace.h"
#include "common/json.h"

namespace baton::bench {

struct Segment {
  uint64_t key = 0;
  int64_t num_tokens = 0;
};

struct RequestSpec {
  double arrival_s = 0;  // scheduled arrival (turn 0); turns > 0 follow their previous turn
  std::vector<Segment> prompt;
  int64_t prompt_tokens = 0;  // sum of the segments
  int64_t output_tokens = 0;  // exact: max_tokens = min_tokens, ignore_eos
  int64_t session = -1;       // multiturn: session id
  int turn = 0;
  double think_time_s = 0;  // multiturn: wait after the previous turn completes
  int64_t next_turn = -1;   // index of the session's next turn, or -1
};

struct LengthRange {
  int64_t min = 0, max = 0;
};
// "512" or "256:1024" (inclusive).
Result<LengthRange> parse_length_range(const std::string& text, const std::string& what);

enum class PromptFormat { kTokenIds, kText };

struct WorkloadOptions {
  std::string kind = "random";  // random | prefix | multiturn | trace
  LengthRange input_len{512, 512};
  LengthRange output_len{128, 128};
  size_t num_requests = 200;  // 0 with duration_s > 0: as many as arrive in duration_s
  double duration_s = 0;
  ArrivalSpec arrival;
  // prefix
  size_t num_prefix_groups = 8;
  double prefix_hit_rate = 0.5;
  // multiturn
  int num_turns = 4;
  double think_time_s = 1.0;
  // trace
  std::string trace_path;
  TraceFormat trace_format = TraceFormat::kAzure;
  double time_scale = 1.0;            // trace timestamps are multiplied by this
  bool rate_overrides_trace = false;  // true: time_scale = natural rate / arrival.rate
  // prompts
  PromptFormat prompt_format = PromptFormat::kTokenIds;
  int64_t vocab_size = 151936;
  uint64_t seed = 0;
};

struct Workload {
  std::string kind;
  std::vector<RequestSpec> requests;  // sorted by arrival for turn 0s; follow-ups anywhere
  double natural_rate = 0;            // trace: requests/s of the unscaled trace
  double time_scale = 1.0;            // trace: the scale applied
  Json describe;                      // parameters, for the report
};

Status validate(const WorkloadOptions& options);
// What a workload's rate counts: "sessions/s" for multiturn (a session is
// several requests), else "req/s".
const char* rate_unit(const std::string& kind);
// The same for a result document (`baton bench --json`), from its first run's workload.
std::string result_rate_unit(const Json& doc);
Result<Workload> make_workload(const WorkloadOptions& options);
// Builds trace requests from parsed entries (used by make_workload).
Result<Workload> make_trace_workload(const std::vector<TraceEntry>& entries, const WorkloadOptions& options);

// Token ids of a prompt: ids uniform in [lo, hi) of the vocabulary, away from
// both ends where tokenizers keep special tokens.
std::vector<int32_t> materialize_ids(const std::vector<Segment>& prompt, int64_t vocab_size);

// Which requests a run does not measure (the load is still building up): the
// first `num_warmup` first turns by arrival, every first turn scheduled before
// `warmup_s`, and the follow-up turns of those sessions. One flag per request.
std::vector<bool> warmup_flags(const Workload& workload, size_t num_warmup, double warmup_s);
// Text of a prompt: one common English word per planned token.
std::string materialize_text(const std::vector<Segment>& prompt);
// The id range materialize_ids draws from: [first, second).
std::pair<int32_t, int32_t> token_id_range(int64_t vocab_size);

}  // namespace baton::bench

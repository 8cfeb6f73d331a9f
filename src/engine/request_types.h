// What a caller submits to the engine and what it gets back, token by token.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backend/sampling_params.h"
#include "common/json.h"

namespace baton {

enum class FinishReason { kNone, kStop, kLength, kAbort };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "abort", "" for kNone

struct GenerationRequest {
  std::string request_id;  // unique among live requests
  std::vector<int32_t> prompt_ids;
  SamplingParams sampling;
  int max_tokens = 16;  // output tokens at most
  int min_tokens = 0;   // stop ids/strings/EOS ignored before this many
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;      // besides the model's EOS ids
  std::vector<std::string> stop;            // stop strings, excluded from the output text
  bool include_stop_str_in_output = false;  // a matched stop string (or stop token's text) ends the text
  bool detokenize = true;                   // produce text (needs the engine's tokenizer)
  bool skip_special_tokens = true;          // special tokens' text left out (vLLM's default)
  // PD (DESIGN.md "PD handoff"): the kv_transfer_params of the OpenAI request.
  Json kv_transfer_params;  // null when absent
};

struct TokenLogprob {
  int32_t token_id = -1;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // best first
};

// One update of one request: the tokens produced since the last update.
struct RequestOutput {
  std::string request_id;
  std::vector<int32_t> new_token_ids;
  std::string new_text;                    // stop strings already removed (unless included)
  std::vector<TokenLogprob> new_logprobs;  // when sampling.num_logprobs >= 0
  std::vector<double> new_token_times_s;   // monotonic seconds, one per new token
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  std::string error;  // set when finished by a failure
  int num_prompt_tokens = 0;
  int num_cached_tokens = 0;  // prompt tokens served from the prefix cache
  int num_output_tokens = 0;  // total so far
  // Set on the final output of a PD prefill request (DESIGN.md step 2).
  Json kv_transfer_params;
  // Per-request timings (monotonic seconds), filled on the final output.
  double arrival_time_s = 0, first_scheduled_time_s = 0, first_token_time_s = 0, finished_time_s = 0;
};

// A snapshot of the engine's state and counters, for metrics and the bench.
struct EngineStats {
  int num_running = 0;
  int num_waiting = 0;
  int num_kv_blocks_total = 0;
  int num_kv_blocks_free = 0;
  int num_kv_blocks_cached = 0;      // free but holding a reusable prefix
  double kv_usage = 0.0;             // 1 - free/total
  int64_t prefix_cache_queries = 0;  // prompt tokens looked up
  int64_t prefix_cache_hits = 0;     // prompt tokens found
  int64_t num_preemptions = 0;
  int64_t prompt_tokens_total = 0;  // prompt tokens computed
  int64_t generation_tokens_total = 0;
  int64_t num_steps = 0;
  // The last step.
  int last_step_prefill_tokens = 0;
  int last_step_decode_tokens = 0;
  double last_step_time_s = 0.0;
  // Added by the engine (cumulative unless named last_).
  int last_step_num_seqs = 0;         // sequences in the last step's batch
  double step_time_total_s = 0.0;     // summed step() time (schedule + forward + update)
  int64_t num_requests_finished = 0;  // final outputs of any reason, aborts and errors included
  int64_t num_requests_aborted = 0;   // finish_reason abort (client aborts, shutdown, errors)
};

}  // namespace baton

// One request inside the engine: its tokens, how far its KV is computed, its
// place in the state machine (waiting -> running -> finished, with
// running -> preempted -> running when blocks run out) and its timings.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/detokenizer.h"
#include "engine/request_types.h"

namespace baton {

enum class RequestStatus { kWaiting, kRunning, kPreempted, kFinished, kWaitingForRemoteKv };
// PD decode side (engine/kv_connector.h): where a do_remote_prefill request's
// prompt KV stands. kPending until admitted, kLoading while the pull runs,
// kDone after it (or after a failed pull turned into a local recompute).
enum class RemoteKvState { kNone, kPending, kLoading, kDone };
// PD prefill side, streamed KV: kOpen once the lease of a stream_kv request
// started (its params went out), kStopped once it was aborted or preempted
// (the rest of the prompt is computed for nobody's lease).
enum class KvStreamState { kNone, kOpen, kStopped };
const char* request_status_name(RequestStatus s);

struct Request {
  Request(uint64_t key, GenerationRequest request, uint64_t seed, double arrival_time_s);

  uint64_t key;                                   // engine-internal id (the KV manager's key)
  GenerationRequest params;                       // as submitted (prompt_ids, sampling, stops)
  uint64_t seed;                                  // the sampler's seed (given or drawn at submission)
  std::vector<int32_t> all_token_ids;             // [num_prompt_tokens + num_output_tokens]
  std::vector<int32_t> output_ids;                // the generated tokens
  std::vector<int32_t> banned_before_min_tokens;  // EOS/stop ids while under min_tokens

  RequestStatus status = RequestStatus::kWaiting;
  FinishReason finish_reason = FinishReason::kNone;
  int num_computed_tokens = 0;  // tokens whose KV is written
  int num_cached_tokens = -1;   // prompt tokens from the prefix cache at first scheduling
  int num_preemptions = 0;
  RemoteKvState remote_kv = RemoteKvState::kNone;
  KvStreamState kv_stream = KvStreamState::kNone;
  Json kv_transfer_out;  // PD prefill side: kv_transfer_params of the final output

  // Output not yet delivered.
  std::vector<int32_t> pending_ids;
  std::vector<TokenLogprob> pending_logprobs;
  std::vector<double> pending_times_s;
  std::string pending_text;  // decoded, stop-checked, not yet delivered
  std::string held_text;     // held back: may begin a stop string
  std::string text_tail;     // the last output text, searched for stop strings
  std::unique_ptr<DetokenizerStream> detok;
  size_t max_stop_len = 0;

  double arrival_time_s = 0, first_scheduled_time_s = 0, first_token_time_s = 0, finished_time_s = 0;

  const std::string& id() const { return params.request_id; }
  int num_prompt_tokens() const { return static_cast<int>(params.prompt_ids.size()); }
  int num_tokens() const { return static_cast<int>(all_token_ids.size()); }
  int num_output_tokens() const { return static_cast<int>(output_ids.size()); }
  bool is_finished() const { return status == RequestStatus::kFinished; }
};

}  // namespace baton

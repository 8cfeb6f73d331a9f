#include "engine/request.h"

#include <algorithm>

namespace baton {

const char* request_status_name(RequestStatus s) {
  switch (s) {
    case RequestStatus::kWaiting: return "waiting";
    case RequestStatus::kRunning: return "running";
    case RequestStatus::kPreempted: return "preempted";
    case RequestStatus::kFinished: return "finished";
    case RequestStatus::kWaitingForRemoteKv: return "waiting_for_remote_kv";
  }
  return "?";
}

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
  }
  return "";
}

Request::Request(uint64_t key_, GenerationRequest request, uint64_t seed_, double arrival_s)
    : key(key_), params(std::move(request)), seed(seed_), arrival_time_s(arrival_s) {
  all_token_ids = params.prompt_ids;
  // Reserve for a typical output, not max_tokens (often huge and unused).
  const size_t expected_output = static_cast<size_t>(std::min(params.max_tokens, 512));
  all_token_ids.reserve(params.prompt_ids.size() + expected_output);
  output_ids.reserve(expected_output);
  for (const std::string& s : params.stop) max_stop_len = std::max(max_stop_len, s.size());
}

}  // namespace baton

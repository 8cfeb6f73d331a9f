#include "engine/output_processor.h"

#include <algorithm>

namespace baton {

namespace {

// Largest index <= i that does not split a UTF-8 character.
size_t utf8_boundary_at_or_before(const std::string& s, size_t i) {
  while (i > 0 && i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

bool contains(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

bool OutputProcessor::is_stop_token(const Request& r, int32_t token) const {
  if (!r.params.ignore_eos && contains(eos_ids_, token)) return true;
  return contains(r.params.stop_token_ids, token);
}

bool OutputProcessor::add_text(Request& r, std::string piece, bool check_stops) const {
  if (r.params.stop.empty()) {
    r.pending_text += piece;
    return false;
  }
  std::string combined = std::move(r.held_text);
  combined += piece;
  r.held_text.clear();
  if (check_stops) {
    size_t best = std::string::npos, best_len = 0;
    for (const std::string& s : r.params.stop) {
      if (s.empty()) continue;
      size_t p = combined.find(s);
      if (p < best) best = p, best_len = s.size();
    }
    if (best != std::string::npos) {
      r.pending_text.append(combined, 0, best + (r.params.include_stop_str_in_output ? best_len : 0));
      return true;
    }
  }
  // Hold back the last max_stop_len - 1 bytes: they may begin a stop string.
  size_t keep = r.max_stop_len > 0 ? r.max_stop_len - 1 : 0;
  size_t cut = combined.size() > keep ? combined.size() - keep : 0;
  cut = utf8_boundary_at_or_before(combined, cut);
  r.pending_text.append(combined, 0, cut);
  r.held_text = combined.substr(cut);
  return false;
}

bool OutputProcessor::append_token(Request& r, const SampleResult& sample, double now_s) const {
  const int32_t token = sample.token_id;
  r.all_token_ids.push_back(token);
  r.output_ids.push_back(token);
  r.pending_ids.push_back(token);
  r.pending_times_s.push_back(now_s);
  if (r.first_token_time_s == 0) r.first_token_time_s = now_s;
  if (r.params.sampling.num_logprobs >= 0) {
    r.pending_logprobs.push_back({token, sample.logprob, sample.top_logprobs});
  }
  const bool past_min = r.num_output_tokens() >= r.params.min_tokens;
  FinishReason reason = FinishReason::kNone;
  if (past_min && is_stop_token(r, token)) {
    reason = FinishReason::kStop;
    // The stop token's text is output only when asked for, as vLLM does
    // (and then not when it is a special token the request skips).
    if (r.detok && r.params.include_stop_str_in_output) add_text(r, r.detok->add(token), false);
  } else {
    if (r.detok && add_text(r, r.detok->add(token), past_min)) reason = FinishReason::kStop;
  }
  if (reason == FinishReason::kNone && r.num_output_tokens() >= r.params.max_tokens) {
    reason = FinishReason::kLength;
  }
  if (reason == FinishReason::kNone) return false;
  r.finish_reason = reason;
  flush_text(r);  // after a stop-string match held_text is empty: the text ends there
  return true;
}

void OutputProcessor::flush_text(Request& r) const {
  r.pending_text += r.held_text;
  r.held_text.clear();
  if (r.detok) {
    // A stop string already cut the text: drop the decoder's remainder.
    std::string rest = r.detok->flush();
    if (r.finish_reason != FinishReason::kStop || r.params.stop.empty()) r.pending_text += rest;
    r.detok.reset();
  }
}

RequestOutput OutputProcessor::take_output(Request& r) const {
  RequestOutput o;
  o.request_id = r.id();
  o.new_token_ids = std::move(r.pending_ids);
  o.new_text = std::move(r.pending_text);
  o.new_logprobs = std::move(r.pending_logprobs);
  o.new_token_times_s = std::move(r.pending_times_s);
  r.pending_ids.clear();
  r.pending_text.clear();
  r.pending_logprobs.clear();
  r.pending_times_s.clear();
  o.num_prompt_tokens = r.num_prompt_tokens();
  o.num_cached_tokens = std::max(r.num_cached_tokens, 0);
  o.num_output_tokens = r.num_output_tokens();
  o.finished = r.is_finished();
  if (o.finished) {
    o.finish_reason = r.finish_reason;
    o.arrival_time_s = r.arrival_time_s;
    o.first_scheduled_time_s = r.first_scheduled_time_s;
    o.first_token_time_s = r.first_token_time_s;
    o.finished_time_s = r.finished_time_s;
  }
  return o;
}

}  // namespace baton

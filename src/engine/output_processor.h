// What happens to a request after the backend sampled a token for it:
// the token is appended, the stop conditions are checked (EOS unless
// ignore_eos, stop_token_ids, stop strings matched across token boundaries on
// the decoded text, max_tokens; none of the stops before min_tokens), and the
// text to deliver is produced, holding back the tail that might begin a stop
// string. Everything after a matched stop string never reaches the output
// text, nor does the stop string (or a stop token's text) itself unless
// include_stop_str_in_output.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/step.h"
#include "engine/request.h"

namespace baton {

class OutputProcessor {
 public:
  explicit OutputProcessor(std::vector<int32_t> eos_token_ids) : eos_ids_(std::move(eos_token_ids)) {}

  const std::vector<int32_t>& eos_token_ids() const { return eos_ids_; }

  // Appends the sampled token; returns true when it finishes the request
  // (r.finish_reason is then set, and the text flushed).
  bool append_token(Request& r, const SampleResult& sample, double now_s) const;

  // Ends the request's text (for a finish not decided here: abort, errors):
  // held-back text and the decoder's remainder become deliverable.
  void flush_text(Request& r) const;

  // The output accumulated since the last call (and the final fields when
  // the request is finished); clears the pending buffers.
  RequestOutput take_output(Request& r) const;

 private:
  bool is_stop_token(const Request& r, int32_t token) const;
  // Adds decoded text; true when a stop string matched.
  bool add_text(Request& r, std::string piece, bool check_stops) const;

  std::vector<int32_t> eos_ids_;
};

}  // namespace baton

// The thread-safe face of an engine, for the server and the CLI. One engine
// thread runs step() in a loop; any thread submits, streams and aborts.
//
// Outputs are delivered through the callback given at submission, called on
// the engine thread (keep it short: post the output to your own executor).
// The final output of a request has finished = true; after it the callback is
// never called again. An aborted or finished request frees its KV blocks at
// once.
#pragma once

#include <functional>
#include <string>

#include "common/status.h"
#include "engine/request_types.h"

namespace baton {

using OutputCallback = std::function<void(RequestOutput)>;

class EngineApi {
 public:
  virtual ~EngineApi() = default;

  // Validates and enqueues. Errors (returned, nothing enqueued):
  // kInvalidArgument for bad parameters or a prompt + max_tokens beyond the
  // model's context or the whole KV cache; kResourceExhausted when the
  // waiting queue is full.
  virtual Status submit(GenerationRequest request, OutputCallback on_output) = 0;

  // Aborts a live request (no-op if unknown or finished). Its callback gets a
  // final output with finish_reason kAbort.
  virtual void abort(const std::string& request_id) = 0;

  virtual EngineStats stats() const = 0;
  virtual int max_model_len() const = 0;
  // Ok, or the error that stopped the engine for good (its backend broke:
  // a tensor parallel rank failed or hung); submit() then refuses with it.
  virtual Status health() const { return Status::ok(); }
};

}  // namespace baton

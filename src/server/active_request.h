// One generation request being answered: its n choices (each an engine
// request sharing the prompt), turned into the response body or the SSE
// stream, with tool calls read out of each choice's text. Runs on the
// exchange's executor.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/request_types.h"
#include "http/http_exchange.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "server/server_metrics.h"

namespace baton {

class ActiveRequest {
 public:
  struct Hooks {
    // Called once when the last choice has finished (may destroy this).
    std::function<void(const std::string& response_id)> on_finished;
    // Aborts one engine request (the other choices, after one failed).
    std::function<void(const std::string& engine_request_id)> abort;
    // A fresh tool-call id.
    std::function<std::string()> next_tool_call_id;
  };

  ActiveRequest(std::shared_ptr<HttpExchange> exchange, OpenAiRequest request, ResponseHeader header,
                const PromptCodec& codec, ServerMetrics& metrics, Hooks hooks);

  // The engine request id of choice i (the response id itself when n = 1).
  std::string engine_request_id(int choice) const;
  int num_choices() const { return static_cast<int>(choices_.size()); }

  const HttpExchange* exchange() const { return exchange_.get(); }

  void start_stream();
  // The last guard of a running request: an unexpected exception while
  // turning an output into bytes ends this request (its choices aborted in
  // the engine, a 500 or an error event for its client), never the process.
  void on_output(int choice, RequestOutput out);

 private:
  void handle_output(int choice, RequestOutput out);
  void fail_internal(const char* what);
  struct Choice {
    explicit Choice(int index, const OpenAiRequest& request, const ResponseHeader& header, const PromptCodec& codec);
    int index;
    std::string text;  // generated text (without the tool-call prefix)
    std::vector<ToolCallOut> tool_calls;
    LogprobsBuilder logprobs;
    DeltaChunkWriter delta_writer;
    std::optional<ToolCallStreamParser> tools;  // chat with a tool-call parser
    RequestTimings timings;
    int num_output_tokens = 0;
    bool done = false;
    FinishReason reason = FinishReason::kNone;
  };

  void stream_delta(Choice& c, const RequestOutput& out, const std::string& content, std::vector<ToolCall> calls);
  void finish_choice(Choice& c, RequestOutput out, double now);
  // Ends the request with a 500 (or an error event) carrying `message`;
  // the other choices are aborted.
  void fail(const std::string& message);
  void complete(const Json& kv_transfer_params);
  std::vector<ToolCallOut> name_calls(std::vector<ToolCall> calls, const Choice& c);
  int prompt_tokens() const;

  std::shared_ptr<HttpExchange> exchange_;
  OpenAiRequest request_;
  ResponseHeader header_;
  ServerMetrics& metrics_;
  Hooks hooks_;
  std::vector<Choice> choices_;
  int num_done_ = 0;
  int num_prompt_tokens_ = 0;
  bool failed_ = false;
};

}  // namespace baton

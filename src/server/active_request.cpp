#include "server/active_request.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/clock.h"
#include "common/log.h"

namespace baton {

namespace {

HttpResponse json_response(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = dump_json(body);
  return r;
}

}  // namespace

ActiveRequest::Choice::Choice(int index, const OpenAiRequest& request, const ResponseHeader& header,
                              const PromptCodec& codec)
    : index(index), logprobs(request.kind, codec), delta_writer(header, request.include_usage, index) {
  if (request.tool_format != ToolCallFormat::kNone) tools.emplace(request.tool_format, request.tool_call_prefix);
  timings.arrival_s = monotonic_s();
}

ActiveRequest::ActiveRequest(std::shared_ptr<HttpExchange> exchange, OpenAiRequest request, ResponseHeader header,
                             const PromptCodec& codec, ServerMetrics& metrics, Hooks hooks)
    : exchange_(std::move(exchange)),
      request_(std::move(request)),
      header_(std::move(header)),
      metrics_(metrics),
      hooks_(std::move(hooks)) {
  choices_.reserve(request_.n);
  for (int i = 0; i < request_.n; ++i) choices_.emplace_back(i, request_, header_, codec);
}

std::string ActiveRequest::engine_request_id(int choice) const {
  return request_.n == 1 ? header_.id : fmt::format("{}-{}", header_.id, choice);
}

void ActiveRequest::start_stream() {
  if (!request_.stream) return;
  exchange_->start_events();
  if (request_.kind == ApiKind::kChat) {
    for (const Choice& c : choices_) {
      exchange_->send_event(dump_json(chat_role_chunk(header_, request_.include_usage, c.index)));
    }
  }
}

std::vector<ToolCallOut> ActiveRequest::name_calls(std::vector<ToolCall> calls, const Choice& c) {
  std::vector<ToolCallOut> out;
  for (ToolCall& call : calls) {
    if (!request_.chat.parallel_tool_calls && c.tool_calls.size() + out.size() >= 1) break;
    out.push_back(ToolCallOut{hooks_.next_tool_call_id(), std::move(call)});
  }
  return out;
}

void ActiveRequest::on_output(int choice, RequestOutput out) {
  if (failed_ || choice < 0 || choice >= num_choices()) return;
  try {
    handle_output(choice, std::move(out));
  } catch (const std::exception& e) {
    fail_internal(e.what());
  } catch (...) {
    fail_internal("unknown exception");
  }
}

void ActiveRequest::fail_internal(const char* what) {
  BATON_LOG_ERROR("request {}: unexpected error while writing its response: {}", header_.id, what);
  fail("internal error while writing the response; the request was dropped");
}

void ActiveRequest::handle_output(int choice, RequestOutput out) {
  Choice& c = choices_[choice];
  if (c.done) return;
  const double now = monotonic_s();
  if (!out.new_token_ids.empty()) {
    if (c.timings.first_token_s == 0) c.timings.first_token_s = now;
    if (out.new_token_times_s.size() == out.new_token_ids.size()) {
      c.timings.token_times_s.insert(c.timings.token_times_s.end(), out.new_token_times_s.begin(),
                                     out.new_token_times_s.end());
    } else {
      c.timings.token_times_s.insert(c.timings.token_times_s.end(), out.new_token_ids.size(), now);
    }
  }
  c.num_output_tokens = std::max(c.num_output_tokens, out.num_output_tokens);
  if (out.num_output_tokens == 0) c.num_output_tokens += static_cast<int>(out.new_token_ids.size());
  if (out.num_prompt_tokens > 0) num_prompt_tokens_ = out.num_prompt_tokens;
  if (request_.want_logprobs && !out.new_logprobs.empty()) c.logprobs.add(out.new_logprobs, c.text.size());
  c.text += out.new_text;

  if (!out.finished) {
    if (!request_.stream) return;
    if (!out.kv_transfer_params.is_null()) {
      // PD prefill with streamed KV: the lease's params go out while the
      // prompt still computes, so that the decode side starts pulling.
      Json chunk = stream_chunk(header_, "", nullptr, FinishReason::kNone, request_.include_usage, c.index);
      chunk["kv_transfer_params"] = out.kv_transfer_params;
      exchange_->send_event(dump_json(chunk));
    }
    if (c.tools) {
      ToolCallStreamParser::Delta d = c.tools->push(out.new_text);
      stream_delta(c, out, d.content, std::move(d.tool_calls));
    } else if (!out.new_token_ids.empty() || !out.new_text.empty()) {
      stream_delta(c, out, out.new_text, {});
    }
    return;
  }
  finish_choice(c, std::move(out), now);
}

void ActiveRequest::stream_delta(Choice& c, const RequestOutput& out, const std::string& content,
                                 std::vector<ToolCall> calls) {
  if (request_.want_logprobs) {
    if (!content.empty() || !c.logprobs.empty()) {
      exchange_->send_event(dump_json(
          stream_chunk(header_, content, c.logprobs.take(), FinishReason::kNone, request_.include_usage, c.index)));
    }
  } else if (!content.empty() || !c.tools) {
    exchange_->send_event(c.delta_writer.chunk(content));
  }
  if (!calls.empty()) {
    std::vector<ToolCallOut> named = name_calls(std::move(calls), c);
    if (named.empty()) return;
    exchange_->send_event(dump_json(
        tool_calls_chunk(header_, c.index, named, static_cast<int>(c.tool_calls.size()), request_.include_usage)));
    for (ToolCallOut& t : named) c.tool_calls.push_back(std::move(t));
  }
}

void ActiveRequest::finish_choice(Choice& c, RequestOutput out, double now) {
  c.done = true;
  ++num_done_;
  c.reason = out.finish_reason == FinishReason::kNone ? FinishReason::kStop : out.finish_reason;
  if (out.arrival_time_s > 0) {
    // Engine timings are on the same monotonic clock; prefer them.
    c.timings.arrival_s = std::min(c.timings.arrival_s, out.arrival_time_s);
    c.timings.first_scheduled_s = out.first_scheduled_time_s;
    if (out.first_token_time_s > 0) c.timings.first_token_s = out.first_token_time_s;
  }
  c.timings.finished_s = out.finished_time_s > 0 ? out.finished_time_s : now;
  metrics_.record_finished(out.error.empty() ? c.reason : FinishReason::kNone, c.num_output_tokens, c.timings);
  if (!out.error.empty()) return fail("generation failed: " + out.error);

  if (request_.stream) {
    std::string content = out.new_text;
    std::vector<ToolCall> calls;
    if (c.tools) {
      ToolCallStreamParser::Delta d = c.tools->push(out.new_text);
      ToolCallStreamParser::Delta rest = c.tools->finish();
      content = d.content + rest.content;
      calls = std::move(d.tool_calls);
      for (ToolCall& t : rest.tool_calls) calls.push_back(std::move(t));
    }
    Json lp = request_.want_logprobs && !c.logprobs.empty() ? c.logprobs.take() : Json(nullptr);
    if (request_.kind == ApiKind::kChat && (!content.empty() || !calls.empty())) {
      // Chat sends the last text as its own delta, then a chunk with the reason.
      if (!content.empty()) {
        exchange_->send_event(dump_json(
            stream_chunk(header_, content, std::move(lp), FinishReason::kNone, request_.include_usage, c.index)));
        lp = nullptr;
      }
      content.clear();
      if (!calls.empty()) stream_delta(c, out, "", std::move(calls));
    }
    Json last = stream_chunk(header_, content, std::move(lp), c.reason, request_.include_usage, c.index,
                             !c.tool_calls.empty());
    if (!out.kv_transfer_params.is_null()) last["kv_transfer_params"] = out.kv_transfer_params;
    exchange_->send_event(dump_json(last));
  } else if (c.tools) {
    ParsedToolOutput parsed = parse_tool_calls(request_.tool_format, request_.tool_call_prefix + c.text);
    // A call that does not parse leaves the generated text as it is.
    c.text = parsed.tool_calls.empty() ? c.text : std::move(parsed.content);
    c.tool_calls = name_calls(std::move(parsed.tool_calls), c);
  }
  if (num_done_ == num_choices()) complete(out.kv_transfer_params);
}

void ActiveRequest::fail(const std::string& message) {
  failed_ = true;
  for (int i = 0; i < num_choices(); ++i) {
    if (!choices_[i].done) hooks_.abort(engine_request_id(i));
  }
  ApiError e;
  e.http_status = 500;
  e.type = "internal_error";
  e.message = message;
  if (request_.stream) {
    exchange_->send_event(dump_json(e.to_json()));
    exchange_->send_event("[DONE]");
    exchange_->end_events();
  } else {
    exchange_->reply(json_response(e.http_status, e.to_json()));
  }
  hooks_.on_finished(header_.id);  // may destroy this
}

void ActiveRequest::complete(const Json& kv_transfer_params) {
  int num_output_tokens = 0;
  for (const Choice& c : choices_) num_output_tokens += c.num_output_tokens;
  if (request_.stream) {
    if (request_.include_usage) {
      exchange_->send_event(dump_json(usage_chunk(header_, prompt_tokens(), num_output_tokens)));
    }
    exchange_->send_event("[DONE]");
    exchange_->end_events();
  } else {
    std::vector<ChoiceResult> results;
    for (Choice& c : choices_) {
      ChoiceResult r;
      r.index = c.index;
      r.text = std::move(c.text);
      r.tool_calls = std::move(c.tool_calls);
      r.logprobs = request_.want_logprobs ? c.logprobs.take() : Json(nullptr);
      r.reason = c.reason;
      results.push_back(std::move(r));
    }
    exchange_->reply(json_response(
        200, final_response(header_, std::move(results), prompt_tokens(), num_output_tokens, kv_transfer_params)));
  }
  hooks_.on_finished(header_.id);  // may destroy this
}

int ActiveRequest::prompt_tokens() const {
  return num_prompt_tokens_ > 0 ? num_prompt_tokens_ : static_cast<int>(request_.gen.prompt_ids.size());
}

}  // namespace baton

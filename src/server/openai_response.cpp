#include "server/openai_response.h"

#include <cmath>

namespace baton {
namespace {

const char* object_name(ApiKind kind, bool chunk) {
  if (kind == ApiKind::kChat) return chunk ? "chat.completion.chunk" : "chat.completion";
  return "text_completion";
}

Json header_json(const ResponseHeader& h, bool chunk) {
  return Json{{"id", h.id}, {"object", object_name(h.kind, chunk)}, {"created", h.created}, {"model", h.model}};
}

Json reason_json(FinishReason r) {
  if (r == FinishReason::kNone) return nullptr;
  return finish_reason_text(r);
}

Json bytes_of(const std::string& s) {
  Json out = Json::array();
  for (unsigned char c : s) out.push_back(static_cast<int>(c));
  return out;
}

// Logprobs must be finite JSON numbers; -inf (a masked token) becomes a large negative.
double finite(float v) { return std::isfinite(v) ? v : -9999.0; }

}  // namespace

const char* finish_reason_text(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kNone: break;
  }
  return "";
}

void LogprobsBuilder::add(const std::vector<TokenLogprob>& logprobs, size_t text_offset) {
  if (value_.is_null()) {
    if (kind_ == ApiKind::kChat) {
      value_ = Json{{"content", Json::array()}};
    } else {
      value_ = Json{{"tokens", Json::array()},
                    {"token_logprobs", Json::array()},
                    {"top_logprobs", Json::array()},
                    {"text_offset", Json::array()}};
    }
  }
  for (const TokenLogprob& lp : logprobs) {
    std::string token = codec_.token_text(lp.token_id);
    ++num_tokens_;
    if (kind_ == ApiKind::kChat) {
      Json top = Json::array();
      for (const auto& [id, v] : lp.top) {
        std::string t = codec_.token_text(id);
        top.push_back({{"token", t}, {"logprob", finite(v)}, {"bytes", bytes_of(t)}});
      }
      value_["content"].push_back(
          {{"token", token}, {"logprob", finite(lp.logprob)}, {"bytes", bytes_of(token)}, {"top_logprobs", top}});
    } else {
      Json top = Json::object();
      for (const auto& [id, v] : lp.top) top[codec_.token_text(id)] = finite(v);
      value_["tokens"].push_back(token);
      value_["token_logprobs"].push_back(finite(lp.logprob));
      value_["top_logprobs"].push_back(top);
      value_["text_offset"].push_back(text_offset);
      text_offset += token.size();
    }
  }
}

Json LogprobsBuilder::take() {
  Json out = std::move(value_);
  value_ = nullptr;
  num_tokens_ = 0;
  return out;
}

Json usage_json(int num_prompt_tokens, int num_output_tokens) {
  return Json{{"prompt_tokens", num_prompt_tokens},
              {"completion_tokens", num_output_tokens},
              {"total_tokens", num_prompt_tokens + num_output_tokens}};
}

Json finish_reason_json(FinishReason reason, bool called_tools) {
  if (called_tools && reason == FinishReason::kStop) return "tool_calls";
  return reason_json(reason);
}

namespace {

Json tool_call_json(const ToolCallOut& c) {
  return Json{
      {"id", c.id}, {"type", "function"}, {"function", {{"name", c.call.name}, {"arguments", c.call.arguments}}}};
}

}  // namespace

Json final_response(const ResponseHeader& h, std::vector<ChoiceResult> choices, int num_prompt_tokens,
                    int num_output_tokens, const Json& kv_transfer_params) {
  Json body = header_json(h, false);
  body["choices"] = Json::array();
  for (ChoiceResult& c : choices) {
    const bool called = !c.tool_calls.empty();
    Json choice;
    if (h.kind == ApiKind::kChat) {
      Json message = {{"role", "assistant"}, {"content", c.text}};
      if (called) {
        // Content beside calls is null when there is none, as OpenAI sends it.
        bool blank = c.text.find_first_not_of(" \t\r\n") == std::string::npos;
        if (blank) message["content"] = nullptr;
        message["tool_calls"] = Json::array();
        for (const ToolCallOut& t : c.tool_calls) message["tool_calls"].push_back(tool_call_json(t));
      }
      choice = Json{{"index", c.index},
                    {"message", std::move(message)},
                    {"logprobs", std::move(c.logprobs)},
                    {"finish_reason", finish_reason_json(c.reason, called)}};
    } else {
      choice = Json{{"index", c.index},
                    {"text", std::move(c.text)},
                    {"logprobs", std::move(c.logprobs)},
                    {"finish_reason", reason_json(c.reason)}};
    }
    body["choices"].push_back(std::move(choice));
  }
  body["usage"] = usage_json(num_prompt_tokens, num_output_tokens);
  if (!kv_transfer_params.is_null()) body["kv_transfer_params"] = kv_transfer_params;
  return body;
}

Json final_response(const ResponseHeader& h, const std::string& text, Json logprobs, FinishReason reason,
                    int num_prompt_tokens, int num_output_tokens, const Json& kv_transfer_params) {
  std::vector<ChoiceResult> choices(1);
  choices[0].text = text;
  choices[0].logprobs = std::move(logprobs);
  choices[0].reason = reason;
  return final_response(h, std::move(choices), num_prompt_tokens, num_output_tokens, kv_transfer_params);
}

Json stream_chunk(const ResponseHeader& h, const std::string& delta_text, Json logprobs, FinishReason reason,
                  bool include_usage_field, int index, bool called_tools) {
  Json body = header_json(h, true);
  Json choice;
  if (h.kind == ApiKind::kChat) {
    Json delta = Json::object();
    if (!delta_text.empty() || reason == FinishReason::kNone) delta["content"] = delta_text;
    choice = Json{{"index", index},
                  {"delta", std::move(delta)},
                  {"logprobs", std::move(logprobs)},
                  {"finish_reason", finish_reason_json(reason, called_tools)}};
  } else {
    choice = Json{{"index", index},
                  {"text", delta_text},
                  {"logprobs", std::move(logprobs)},
                  {"finish_reason", reason_json(reason)}};
  }
  body["choices"] = Json::array({std::move(choice)});
  if (include_usage_field) body["usage"] = nullptr;
  return body;
}

Json tool_calls_chunk(const ResponseHeader& h, int index, const std::vector<ToolCallOut>& calls, int first_call_index,
                      bool include_usage_field) {
  Json body = header_json(h, true);
  Json list = Json::array();
  for (size_t k = 0; k < calls.size(); ++k) {
    Json c = tool_call_json(calls[k]);
    c["index"] = first_call_index + static_cast<int>(k);
    list.push_back(std::move(c));
  }
  body["choices"] = Json::array({Json{{"index", index},
                                      {"delta", {{"tool_calls", std::move(list)}}},
                                      {"logprobs", nullptr},
                                      {"finish_reason", nullptr}}});
  if (include_usage_field) body["usage"] = nullptr;
  return body;
}

DeltaChunkWriter::DeltaChunkWriter(const ResponseHeader& h, bool include_usage_field, int index) {
  auto str = [](const std::string& v) { return Json(v).dump(-1, ' ', false, Json::error_handler_t::replace); };
  prefix_ = "{\"id\":" + str(h.id) + ",\"object\":" + str(object_name(h.kind, true)) +
            ",\"created\":" + std::to_string(h.created) + ",\"model\":" + str(h.model) +
            ",\"choices\":[{\"index\":" + std::to_string(index) + ",";
  prefix_ += h.kind == ApiKind::kChat ? "\"delta\":{\"content\":" : "\"text\":";
  suffix_ = h.kind == ApiKind::kChat ? "}," : ",";
  suffix_ += "\"logprobs\":null,\"finish_reason\":null}]";
  if (include_usage_field) suffix_ += ",\"usage\":null";
  suffix_ += "}";
}

std::string DeltaChunkWriter::chunk(const std::string& delta_text) const {
  std::string out;
  out.reserve(prefix_.size() + suffix_.size() + delta_text.size() + 8);
  out += prefix_;
  out += Json(delta_text).dump(-1, ' ', false, Json::error_handler_t::replace);
  out += suffix_;
  return out;
}

Json chat_role_chunk(const ResponseHeader& h, bool include_usage_field, int index) {
  Json body = header_json(h, true);
  body["choices"] = Json::array({Json{{"index", index},
                                      {"delta", {{"role", "assistant"}, {"content", ""}}},
                                      {"logprobs", nullptr},
                                      {"finish_reason", nullptr}}});
  if (include_usage_field) body["usage"] = nullptr;
  return body;
}

Json usage_chunk(const ResponseHeader& h, int num_prompt_tokens, int num_output_tokens) {
  Json body = header_json(h, true);
  body["choices"] = Json::array();
  body["usage"] = usage_json(num_prompt_tokens, num_output_tokens);
  return body;
}

}  // namespace baton

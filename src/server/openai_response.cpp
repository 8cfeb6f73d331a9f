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

Json final_response(const ResponseHeader& h, const std::string& text, Json logprobs, FinishReason reason,
                    int num_prompt_tokens, int num_output_tokens, const Json& kv_transfer_params) {
  Json body = header_json(h, false);
  Json choice;
  if (h.kind == ApiKind::kChat) {
    choice = Json{{"index", 0},
                  {"message", {{"role", "assistant"}, {"content", text}}},
                  {"logprobs", std::move(logprobs)},
                  {"finish_reason", reason_json(reason)}};
  } else {
    choice = Json{{"index", 0}, {"text", text}, {"logprobs", std::move(logprobs)}, {"finish_reason", reason_json(reason)}};
  }
  body["choices"] = Json::array({std::move(choice)});
  body["usage"] = usage_json(num_prompt_tokens, num_output_tokens);
  if (!kv_transfer_params.is_null()) body["kv_transfer_params"] = kv_transfer_params;
  return body;
}

Json stream_chunk(const ResponseHeader& h, const std::string& delta_text, Json logprobs, FinishReason reason,
                  bool include_usage_field) {
  Json body = header_json(h, true);
  Json choice;
  if (h.kind == ApiKind::kChat) {
    Json delta = Json::object();
    if (!delta_text.empty() || reason == FinishReason::kNone) delta["content"] = delta_text;
    choice = Json{{"index", 0}, {"delta", std::move(delta)}, {"logprobs", std::move(logprobs)},
                  {"finish_reason", reason_json(reason)}};
  } else {
    choice = Json{{"index", 0}, {"text", delta_text}, {"logprobs", std::move(logprobs)},
                  {"finish_reason", reason_json(reason)}};
  }
  body["choices"] = Json::array({std::move(choice)});
  if (include_usage_field) body["usage"] = nullptr;
  return body;
}

DeltaChunkWriter::DeltaChunkWriter(const ResponseHeader& h, bool include_usage_field) {
  auto str = [](const std::string& v) { return Json(v).dump(-1, ' ', false, Json::error_handler_t::replace); };
  prefix_ = "{\"id\":" + str(h.id) + ",\"object\":" + str(object_name(h.kind, true)) +
            ",\"created\":" + std::to_string(h.created) + ",\"model\":" + str(h.model) + ",\"choices\":[{\"index\":0,";
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

Json chat_role_chunk(const ResponseHeader& h, bool include_usage_field) {
  Json body = header_json(h, true);
  body["choices"] = Json::array({Json{{"index", 0},
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

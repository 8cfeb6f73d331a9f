#include "bench/completion_protocol.h"

#include <fmt/format.h>

namespace baton::bench {

std::string make_completion_body(const RequestSpec& spec, const CompletionBodyOptions& o,
                                 const std::string* text_prompt) {
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{{\"model\":{},\"prompt\":", Json(o.model).dump());
  if (text_prompt != nullptr) {
    fmt::format_to(it, "{}", Json(*text_prompt).dump());
  } else if (o.prompt_format == PromptFormat::kTokenIds) {
    auto ids = materialize_ids(spec.prompt, o.vocab_size);
    out.push_back('[');
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out.push_back(',');
      fmt::format_to(it, "{}", ids[i]);
    }
    out.push_back(']');
  } else {
    fmt::format_to(it, "{}", Json(materialize_text(spec.prompt)).dump());
  }
  fmt::format_to(it,
                 ",\"max_tokens\":{0},\"min_tokens\":{0},\"ignore_eos\":true,\"temperature\":0,"
                 "\"stream\":{1}",
                 spec.output_tokens, o.stream ? "true" : "false");
  if (o.stream) fmt::format_to(it, ",\"stream_options\":{{\"include_usage\":true}}");
  out.push_back('}');
  std::string body(out.data(), out.size());
  if (o.extra.is_object() && !o.extra.empty()) {
    Json j = Json::parse(body);
    for (auto& [k, v] : o.extra.items()) j[k] = v;
    body = j.dump();
  }
  return body;
}

ChunkInfo parse_completion_chunk(std::string_view data) {
  ChunkInfo info;
  if (data == "[DONE]") {
    info.done = true;
    return info;
  }
  Json j = Json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    info.error = fmt::format("unreadable stream chunk: {:.200}", data);
    return info;
  }
  if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
    info.error = e->is_object() && e->contains("message") && (*e)["message"].is_string()
                     ? (*e)["message"].get<std::string>()
                     : e->dump();
    return info;
  }
  if (auto c = j.find("choices"); c != j.end() && c->is_array()) {
    for (const auto& choice : *c) {
      if (!choice.is_object()) continue;
      const Json* text = nullptr;
      if (auto t = choice.find("text"); t != choice.end() && t->is_string()) text = &*t;
      if (auto d = choice.find("delta"); d != choice.end() && d->is_object()) {
        if (auto t = d->find("content"); t != d->end() && t->is_string()) text = &*t;
      }
      if (text && !text->get_ref<const std::string&>().empty()) {
        info.content = true;
        info.text += text->get_ref<const std::string&>();
      }
      if (auto f = choice.find("finish_reason"); f != choice.end() && f->is_string()) {
        info.finish_reason = f->get<std::string>();
      }
    }
  }
  info.text_bytes = info.text.size();
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    auto prompt = json_get<int64_t>(*u, "prompt_tokens", 0);
    auto completion = json_get<int64_t>(*u, "completion_tokens", 0);
    if (!prompt.is_ok() || !completion.is_ok()) {
      info.error = fmt::format("bad usage in stream chunk: {:.200}", u->dump());
      return info;
    }
    info.has_usage = true;
    info.prompt_tokens = *prompt;
    info.completion_tokens = *completion;
  }
  return info;
}

}  // namespace baton::bench

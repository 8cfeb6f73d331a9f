#include "server/openai_request.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include <fmt/format.h>

namespace baton {
namespace {

constexpr int kMaxLogprobs = 20;
constexpr size_t kMaxLogitBias = 1024;  // tokens one logit_bias may name
// Stop conditions a request may set: every output token is checked against
// each (a megabyte body of 2-byte stop strings would otherwise cost every
// step of the shared engine loop ~100,000 searches). OpenAI allows 4 stop
// strings; vLLM sets no limit.
constexpr size_t kMaxStopStrings = 64;
constexpr size_t kMaxStopStringBytes = 1024;
constexpr size_t kMaxStopTokenIds = 1024;

// A token id: an integer in [0, INT32_MAX], checked before converting (a
// float, or 1e30, never reaches a narrowing conversion).
std::optional<int32_t> token_id(const Json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT32_MAX)) return std::nullopt;
    return static_cast<int32_t>(u);
  }
  if (!v.is_number_integer()) return std::nullopt;
  int64_t i = v.get<int64_t>();
  if (i < 0 || i > INT32_MAX) return std::nullopt;
  return static_cast<int32_t>(i);
}

// Reads typed fields out of the body; the first failure is kept.
class FieldReader {
 public:
  explicit FieldReader(const Json& body) : body_(body) {}

  bool ok() const { return !error_.has_value(); }
  ApiError error() const { return *error_; }
  void fail(std::string message, std::string param) {
    if (!error_) error_ = bad_request(std::move(message), std::move(param));
  }

  const Json* find(const char* key) {
    auto it = body_.find(key);
    if (it == body_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  void get_bool(const char* key, bool* out) {
    const Json* v = find(key);
    if (!v) return;
    if (!v->is_boolean()) return fail(fmt::format("'{}' must be a boolean, got {}", key, v->type_name()), key);
    *out = v->get<bool>();
  }

  // Integers only (1.0 and true are rejected); returns whether present.
  bool get_int(const char* key, int64_t* out) {
    const Json* v = find(key);
    if (!v) return false;
    if (!v->is_number_integer()) {
      fail(fmt::format("'{}' must be an integer, got {}", key, v->type_name()), key);
      return false;
    }
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      fail(fmt::format("'{}' is out of range", key), key);
      return false;
    }
    *out = v->get<int64_t>();
    return true;
  }

  bool get_number(const char* key, double* out) {
    const Json* v = find(key);
    if (!v) return false;
    if (!v->is_number()) {
      fail(fmt::format("'{}' must be a number, got {}", key, v->type_name()), key);
      return false;
    }
    *out = v->get<double>();
    if (!std::isfinite(*out)) {
      fail(fmt::format("'{}' must be finite", key), key);
      return false;
    }
    return true;
  }

  void get_ranged(const char* key, double lo, double hi, bool lo_open, float* out) {
    double v = 0;
    if (!get_number(key, &v)) return;
    bool below = lo_open ? v <= lo : v < lo;
    if (below || v > hi) {
      return fail(fmt::format("'{}' must be in {}{}, {}], got {}", key, lo_open ? "(" : "[", lo, hi, v), key);
    }
    *out = static_cast<float>(v);
  }

 private:
  const Json& body_;
  std::optional<ApiError> error_;
};

const std::set<std::string>& known_fields(ApiKind kind) {
  static const std::set<std::string> common = {"model",
                                               "stream",
                                               "stream_options",
                                               "n",
                                               "max_tokens",
                                               "temperature",
                                               "top_p",
                                               "seed",
                                               "stop",
                                               "logprobs",
                                               "presence_penalty",
                                               "frequency_penalty",
                                               "top_k",
                                               "min_p",
                                               "min_tokens",
                                               "ignore_eos",
                                               "repetition_penalty",
                                               "kv_transfer_params",
                                               "stop_token_ids",
                                               "user",
                                               "best_of",
                                               "logit_bias",
                                               "skip_special_tokens",
                                               "spaces_between_special_tokens",
                                               "include_stop_str_in_output",
                                               "metadata",
                                               "store",
                                               "service_tier",
                                               "parallel_tool_calls",
                                               "request_id",
                                               "priority",
                                               "response_format",
                                               "guided_json",
                                               "guided_regex",
                                               "guided_choice",
                                               "guided_grammar",
                                               "structured_outputs"};
  static const std::set<std::string> completion = [] {
    std::set<std::string> s = common;
    s.insert({"prompt", "echo", "suffix"});
    return s;
  }();
  static const std::set<std::string> chat = [] {
    std::set<std::string> s = common;
    s.insert({"messages", "max_completion_tokens", "top_logprobs", "add_generation_prompt", "chat_template_kwargs",
              "tools", "tool_choice", "modalities"});
    return s;
  }();
  return kind == ApiKind::kChat ? chat : completion;
}

// Completions prompt: a string, a list of token ids, or a one-element list of either.
void parse_prompt(FieldReader& f, const Json& body, OpenAiRequest* req) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return f.fail("'prompt' is required", "prompt");
  const Json* p = &*it;
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) p = &(*p)[0];
  if (p->is_string()) {
    if (p->get_ref<const std::string&>().empty()) return f.fail("'prompt' must not be empty", "prompt");
    req->prompt_text = p->get<std::string>();
    return;
  }
  if (p->is_array()) {
    if (p->empty()) return f.fail("'prompt' must not be empty", "prompt");
    for (const Json& t : *p) {
      if (t.is_string()) return f.fail("only one prompt per request is supported (n=1, no batching)", "prompt");
      if (!t.is_number_integer()) {
        return f.fail("'prompt' must be a string or a list of integer token ids", "prompt");
      }
      std::optional<int32_t> id = token_id(t);
      if (!id) return f.fail(fmt::format("token id {} is out of range [0, {}]", dump_json(t), INT32_MAX), "prompt");
      req->prompt_ids.push_back(*id);
    }
    return;
  }
  f.fail(fmt::format("'prompt' must be a string or a list of token ids, got {}", p->type_name()), "prompt");
}

void parse_stop(FieldReader& f, OpenAiRequest* req) {
  const Json* s = f.find("stop");
  if (!s) return;
  std::vector<std::string>& stop = req->gen.stop;
  if (s->is_string()) {
    if (!s->get_ref<const std::string&>().empty()) stop.push_back(s->get<std::string>());
  } else if (!s->is_array()) {
    return f.fail("'stop' must be a string or a list of strings", "stop");
  } else if (s->size() > kMaxStopStrings) {
    return f.fail(fmt::format("'stop' may hold at most {} strings, got {}", kMaxStopStrings, s->size()), "stop");
  } else {
    for (const Json& x : *s) {
      if (!x.is_string()) return f.fail("'stop' must be a string or a list of strings", "stop");
      if (x.get_ref<const std::string&>().empty()) return f.fail("'stop' strings must not be empty", "stop");
      stop.push_back(x.get<std::string>());
    }
  }
  for (const std::string& x : stop)
    if (x.size() > kMaxStopStringBytes)
      return f.fail(fmt::format("'stop' strings may be at most {} bytes, got {}", kMaxStopStringBytes, x.size()),
                    "stop");
}

void parse_sampling(FieldReader& f, OpenAiRequest* req) {
  SamplingParams& sp = req->gen.sampling;
  f.get_ranged("temperature", 0.0, 2.0, false, &sp.temperature);
  f.get_ranged("top_p", 0.0, 1.0, true, &sp.top_p);
  f.get_ranged("min_p", 0.0, 1.0, false, &sp.min_p);
  f.get_ranged("presence_penalty", -2.0, 2.0, false, &sp.presence_penalty);
  f.get_ranged("frequency_penalty", -2.0, 2.0, false, &sp.frequency_penalty);
  f.get_ranged("repetition_penalty", 0.0, 2.0, true, &sp.repetition_penalty);
  int64_t v = 0;
  if (f.get_int("top_k", &v)) {
    if (v < -1 || v > INT32_MAX) {
      return f.fail(fmt::format("'top_k' must be -1, 0 or in [1, {}], got {}", INT32_MAX, v), "top_k");
    }
    sp.top_k = v < 0 ? 0 : static_cast<int>(v);
  }
  if (f.get_int("seed", &v)) sp.seed = static_cast<uint64_t>(v);
}

// The first `n` bytes of a client's string, for an error message.
std::string clipped(const std::string& s, size_t n = 32) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

// logit_bias (OpenAI): {"token id": bias in [-100, 100]}; the ids are checked
// against the vocabulary in prepare_prompt.
void parse_logit_bias(FieldReader& f, OpenAiRequest* req) {
  const Json* b = f.find("logit_bias");
  if (!b) return;
  if (!b->is_object()) return f.fail("'logit_bias' must be an object mapping token ids to numbers", "logit_bias");
  if (b->size() > kMaxLogitBias)
    return f.fail(fmt::format("'logit_bias' may name at most {} tokens, got {}", kMaxLogitBias, b->size()),
                  "logit_bias");
  auto& bias = req->gen.sampling.logit_bias;
  for (auto it = b->begin(); it != b->end(); ++it) {
    const std::string& key = it.key();
    int64_t id = -1;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
    if (key.empty() || ec != std::errc() || end != key.data() + key.size() || id < 0 || id > INT32_MAX)
      return f.fail(
          fmt::format("'logit_bias' keys must be token ids (integers in [0, {}]), got '{}'", INT32_MAX, clipped(key)),
          "logit_bias");
    const Json& v = it.value();
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < -100.0 || v.get<double>() > 100.0)
      return f.fail(
          fmt::format("'logit_bias' values must be numbers in [-100, 100], got {} for token {}", clipped(v.dump()), id),
          "logit_bias");
    bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(v.get<double>()));
  }
  std::sort(bias.begin(), bias.end());
  for (size_t i = 1; i < bias.size(); ++i)
    if (bias[i].first == bias[i - 1].first)
      return f.fail(fmt::format("'logit_bias' names token {} twice", bias[i].first), "logit_bias");
}

// Guided decoding (response_format json_object / json_schema, vLLM's guided_*
// and structured_outputs) is refused by name: its output would not follow the
// format asked for.
void refuse_guided_decoding(FieldReader& f) {
  if (const Json* rf = f.find("response_format")) {
    const auto type = rf->is_object() ? rf->find("type") : rf->end();
    if (!rf->is_object() || type == rf->end() || !type->is_string())
      return f.fail("'response_format' must be an object with a string 'type'", "response_format");
    const std::string& t = type->get_ref<const std::string&>();
    if (t != "text")
      return f.fail(fmt::format("'response_format' type '{}' needs guided decoding, which this server does not have "
                                "(only 'text' is accepted)",
                                clipped(t)),
                    "response_format");
  }
  for (const char* key : {"guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs"})
    if (f.find(key)) return f.fail(fmt::format("'{}' (guided decoding) is not supported by this server", key), key);
}

}  // namespace

ParseResult parse_openai_request(ApiKind kind, const Json& body) {
  ParseResult result;
  if (!body.is_object()) {
    result.error = bad_request(fmt::format("the request body must be a JSON object, got {}", body.type_name()));
    return result;
  }
  OpenAiRequest req;
  req.kind = kind;
  FieldReader f(body);
  const auto& known = known_fields(kind);
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!known.count(it.key())) req.ignored_fields.push_back(it.key());
  }

  if (const Json* m = f.find("model")) {
    if (!m->is_string()) f.fail("'model' must be a string", "model");
    else req.model = m->get<std::string>();
  }
  if (kind == ApiKind::kCompletion) parse_prompt(f, body, &req);
  else if (auto e = parse_chat_fields(body, &req.chat)) f.fail(e->message, e->param);

  f.get_bool("stream", &req.stream);
  if (const Json* so = f.find("stream_options")) {
    if (!so->is_object()) {
      f.fail("'stream_options' must be an object", "stream_options");
    } else if (!req.stream) {
      f.fail("'stream_options' is only allowed when 'stream' is true", "stream_options");
    } else if (auto iu = so->find("include_usage"); iu != so->end() && !iu->is_null()) {
      if (!iu->is_boolean()) f.fail("'stream_options.include_usage' must be a boolean", "stream_options");
      else req.include_usage = iu->get<bool>();
    }
  }

  int64_t v = 0;
  if (f.get_int("n", &v)) {
    if (v < 1 || v > kMaxChoices) f.fail(fmt::format("'n' must be in [1, {}], got {}", kMaxChoices, v), "n");
    else req.n = static_cast<int>(v);
  }
  if (f.get_int("best_of", &v) && v != 1) f.fail(fmt::format("only best_of=1 is supported, got {}", v), "best_of");

  const char* max_key = "max_tokens";
  if (kind == ApiKind::kChat && f.find("max_completion_tokens")) max_key = "max_completion_tokens";
  if (f.get_int(max_key, &v)) {
    if (v < 1 || v > INT32_MAX)
      f.fail(fmt::format("'{}' must be at least 1 and at most {}, got {}", max_key, INT32_MAX, v), max_key);
    else req.gen.max_tokens = static_cast<int>(v), req.max_tokens_given = true;
  }
  if (f.get_int("min_tokens", &v)) {
    if (v < 0 || v > INT32_MAX)
      f.fail(fmt::format("'min_tokens' must be in [0, {}], got {}", INT32_MAX, v), "min_tokens");
    else req.gen.min_tokens = static_cast<int>(v);
  }
  if (req.max_tokens_given && req.gen.min_tokens > req.gen.max_tokens) {
    f.fail(fmt::format("'min_tokens' ({}) must not exceed '{}' ({})", req.gen.min_tokens, max_key, req.gen.max_tokens),
           "min_tokens");
  }
  f.get_bool("ignore_eos", &req.gen.ignore_eos);
  parse_sampling(f, &req);
  parse_logit_bias(f, &req);
  parse_stop(f, &req);
  f.get_bool("include_stop_str_in_output", &req.gen.include_stop_str_in_output);
  f.get_bool("skip_special_tokens", &req.gen.skip_special_tokens);
  refuse_guided_decoding(f);
  if (f.get_int("priority", &v) && v != 0)
    f.fail(fmt::format("'priority' {} needs priority scheduling, which this server does not run (send 0)", v),
           "priority");

  if (const Json* ids = f.find("stop_token_ids")) {
    if (!ids->is_array()) f.fail("'stop_token_ids' must be a list of integers", "stop_token_ids");
    else if (ids->size() > kMaxStopTokenIds)
      f.fail(fmt::format("'stop_token_ids' may hold at most {} ids, got {}", kMaxStopTokenIds, ids->size()),
             "stop_token_ids");
    else
      for (const Json& x : *ids) {
        std::optional<int32_t> id = token_id(x);
        if (!id) {
          f.fail(fmt::format("'stop_token_ids' must be a list of integers in [0, {}]", INT32_MAX), "stop_token_ids");
          break;
        }
        req.gen.stop_token_ids.push_back(*id);
      }
  }

  if (kind == ApiKind::kCompletion) {
    if (f.get_int("logprobs", &v)) {
      if (v < 0 || v > kMaxLogprobs) {
        f.fail(fmt::format("'logprobs' must be in [0, {}], got {}", kMaxLogprobs, v), "logprobs");
      } else {
        req.want_logprobs = true;
        req.top_logprobs = static_cast<int>(v);
      }
    }
    bool echo = false;
    f.get_bool("echo", &echo);
    if (echo) f.fail("'echo' is not supported", "echo");
    if (const Json* s = f.find("suffix")) {
      if (!s->is_string() || !s->get_ref<const std::string&>().empty()) f.fail("'suffix' is not supported", "suffix");
    }
  } else {
    f.get_bool("logprobs", &req.want_logprobs);
    if (f.get_int("top_logprobs", &v)) {
      if (v < 0 || v > kMaxLogprobs)
        f.fail(fmt::format("'top_logprobs' must be in [0, {}]", kMaxLogprobs), "top_logprobs");
      else if (!req.want_logprobs && v > 0) f.fail("'top_logprobs' requires 'logprobs' to be true", "top_logprobs");
      else req.top_logprobs = static_cast<int>(v);
    }
    f.get_bool("add_generation_prompt", &req.add_generation_prompt);
  }
  if (req.want_logprobs) req.gen.sampling.num_logprobs = req.top_logprobs;

  if (const Json* kv = f.find("kv_transfer_params")) {
    if (!kv->is_object()) f.fail("'kv_transfer_params' must be an object", "kv_transfer_params");
    else if (req.n > 1) f.fail("'n' > 1 cannot be combined with 'kv_transfer_params' (PD)", "n");
    else req.gen.kv_transfer_params = *kv;
  }

  if (!f.ok()) {
    result.error = f.error();
    return result;
  }
  result.request = std::move(req);
  return result;
}

std::optional<ApiError> prepare_prompt(OpenAiRequest* req, const PromptCodec& codec, int max_model_len,
                                       ToolCallFormat tool_format) {
  const char* param = req->kind == ApiKind::kChat ? "messages" : "prompt";
  if (req->kind == ApiKind::kChat) {
    const ChatFields& chat = req->chat;
    const bool use_tools = chat.has_tools() && chat.tool_choice != ToolChoice::kNone;
    if (use_tools && tool_format == ToolCallFormat::kNone) {
      return bad_request(
          "tools need a tool-call parser: this server has none for its chat template (start it with "
          "--tool-call-parser hermes|llama3_json|deepseek_v3, or send tool_choice \"none\")",
          "tools");
    }
    ChatRenderInput input;
    input.messages = chat.messages;
    if (use_tools)
      input.tools = chat.tools_in_order.is_null() ? nlohmann::ordered_json(chat.tools) : chat.tools_in_order;
    input.add_generation_prompt = req->add_generation_prompt;
    input.template_kwargs = chat.chat_template_kwargs;
    Result<std::string> text = codec.render_chat(input);
    if (!text.is_ok()) return bad_request("cannot render the chat template: " + text.status().message(), param);
    req->prompt_text = std::move(text).value();
    if (use_tools) {
      req->tool_format = tool_format;
      if (chat.tool_choice == ToolChoice::kRequired || chat.tool_choice == ToolChoice::kNamed) {
        // No guided decoding: the call is opened in the prompt, so that the
        // model writes a call of any function, or of the named one.
        req->tool_call_prefix = tool_call_opening(tool_format, chat.tool_choice_name);
        *req->prompt_text += req->tool_call_prefix;
      }
    }
  }
  if (req->prompt_text) {
    Result<std::vector<int32_t>> ids = codec.encode(*req->prompt_text,
                                                    /*add_special_tokens=*/req->kind == ApiKind::kCompletion);
    if (!ids.is_ok()) return bad_request("cannot tokenize the prompt: " + ids.status().message(), param);
    req->prompt_ids = std::move(ids).value();
  } else {
    for (int32_t id : req->prompt_ids) {
      if (id >= codec.vocab_size()) {
        return bad_request(fmt::format("token id {} is out of the vocabulary (size {})", id, codec.vocab_size()),
                           param);
      }
    }
  }
  for (const auto& [id, bias] : req->gen.sampling.logit_bias)
    if (id >= codec.vocab_size())
      return bad_request(
          fmt::format("'logit_bias' token id {} is out of the vocabulary (size {})", id, codec.vocab_size()),
          "logit_bias");
  int num_prompt = static_cast<int>(req->prompt_ids.size());
  if (num_prompt == 0) return bad_request("the prompt is empty after tokenization", param);
  if (!req->max_tokens_given && req->kind == ApiKind::kChat) {
    req->gen.max_tokens = std::max(1, max_model_len - num_prompt);
  }
  int64_t total = static_cast<int64_t>(num_prompt) + req->gen.max_tokens;
  if (num_prompt >= max_model_len || total > max_model_len) {
    return bad_request(fmt::format("This model's maximum context length is {} tokens. However, you requested {} "
                                   "tokens ({} in the prompt, {} in the completion). Please reduce the length "
                                   "of the prompt or completion.",
                                   max_model_len, total, num_prompt, req->gen.max_tokens),
                       param);
  }
  if (req->gen.min_tokens > req->gen.max_tokens) req->gen.min_tokens = req->gen.max_tokens;
  req->gen.prompt_ids = req->prompt_ids;
  return std::nullopt;
}

}  // namespace baton

#include "tokenizer/decoder.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace baton::tokenizer {

namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// ByteFallback's token "<0xE2>" -> 0xE2 (Rust's u8::from_str_radix, which
// also takes a leading '+').
std::optional<uint8_t> byte_fallback_value(std::string_view token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int hi = token[3] == '+' ? 0 : hex(token[3]);
  const int lo = hex(token[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

// A token's raw bytes under ByteLevel: every character through the
// byte-to-unicode table, or the token as it is when one is not in it.
std::string byte_level_bytes(std::string_view token) {
  if (auto bytes = byte_level_to_bytes(token)) return std::move(*bytes);
  return std::string(token);
}

std::string replace_all(const Regex& pattern, std::string_view content, std::string_view token) {
  std::vector<std::pair<size_t, size_t>> matches;
  if (!pattern.find_all(token, matches).is_ok()) return std::string(token);
  std::string out;
  size_t prev = 0;
  for (auto [start, end] : matches) {
    out.append(token.substr(prev, start - prev)).append(content);
    prev = end;
  }
  out.append(token.substr(prev));
  return out;
}

}  // namespace

struct Decoder::Step {
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
  Kind kind = Kind::kByteLevel;
  std::unique_ptr<Regex> pattern;  // kReplace
  std::string content;             // kReplace: the replacement; kStrip, kMetaspace: the character
  size_t start = 0, stop = 0;      // kStrip
  bool strip_first = true;         // kMetaspace: prepend_scheme is not "never"

  void apply(std::vector<std::string>& tokens) const {
    switch (kind) {
      case Kind::kByteLevel: {
        std::string bytes;
        for (const auto& t : tokens) bytes += byte_level_bytes(t);
        tokens.assign(1, std::string());
        append_utf8_lossy(tokens[0], bytes);
        return;
      }
      case Kind::kReplace:
        for (auto& t : tokens) t = replace_all(*pattern, content, t);
        return;
      case Kind::kByteFallback: apply_byte_fallback(tokens); return;
      case Kind::kFuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        return;
      }
      case Kind::kStrip:
        for (auto& t : tokens) t = strip(t);
        return;
      case Kind::kMetaspace:
        for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = metaspace(tokens[i], i == 0 && strip_first);
        return;
    }
  }

  void apply_byte_fallback(std::vector<std::string>& tokens) const {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;  // bytes of consecutive <0xXX> tokens
    auto flush = [&] {
      if (run.empty()) return;
      if (!find_invalid_utf8(run)) {
        out.push_back(std::move(run));
      } else {
        for (size_t i = 0; i < run.size(); ++i) out.emplace_back(kReplacementChar);
      }
      run.clear();
    };
    for (auto& t : tokens) {
      if (auto b = byte_fallback_value(t)) {
        run.push_back(static_cast<char>(*b));
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
  }

  // Up to `start` leading and `stop` trailing copies of the character.
  std::string strip(std::string_view t) const {
    size_t begin = 0, end = t.size();
    for (size_t i = 0; i < start && t.substr(begin).starts_with(content); ++i) begin += content.size();
    for (size_t i = 0; i < stop && end - begin >= content.size() && t.substr(0, end).ends_with(content); ++i) {
      end -= content.size();
    }
    return std::string(t.substr(begin, end - begin));
  }

  // The replacement character -> ' ', or dropped in the first token.
  std::string metaspace(std::string_view t, bool drop) const {
    std::string out;
    size_t pos = 0;
    for (size_t hit = t.find(content); hit != std::string_view::npos; hit = t.find(content, pos)) {
      out.append(t.substr(pos, hit - pos));
      if (!drop) out += ' ';
      pos = hit + content.size();
    }
    out.append(t.substr(pos));
    return out;
  }
};

namespace {

using Step = Decoder::Step;

// A "content"/"replacement" field that must be exactly one character.
Result<std::string> one_char(const Json& spec, const char* key, const std::string& type) {
  auto it = spec.find(key);
  if (it == spec.end() || !it->is_string())
    return invalid_argument("tokenizer.json: {} decoder has no '{}'", type, key);
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty() || find_invalid_utf8(s) || utf8_step(s, 0).num_bytes != s.size()) {
    return invalid_argument("tokenizer.json: {} decoder's '{}' is not one character", type, key);
  }
  return s;
}

Status add_spec(const Json& spec, std::vector<std::unique_ptr<Step>>& steps, int depth) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    return invalid_argument("tokenizer.json: decoder has no 'type'");
  }
  if (depth > 8) return invalid_argument("tokenizer.json: decoder Sequences nest too deeply");
  const auto& type = spec["type"].get_ref<const std::string&>();
  if (type == "Sequence") {
    auto it = spec.find("decoders");
    if (it == spec.end() || !it->is_array()) {
      return invalid_argument("tokenizer.json: Sequence decoder has no 'decoders' array");
    }
    for (const auto& sub : *it) BATON_RETURN_IF_ERROR(add_spec(sub, steps, depth + 1));
    return Status::ok();
  }
  auto step = std::make_unique<Step>();
  if (type == "ByteLevel") {
    step->kind = Step::Kind::kByteLevel;
  } else if (type == "ByteFallback") {
    step->kind = Step::Kind::kByteFallback;
  } else if (type == "Fuse") {
    step->kind = Step::Kind::kFuse;
  } else if (type == "Replace") {
    step->kind = Step::Kind::kReplace;
    auto pat = spec.find("pattern");
    auto content = spec.find("content");
    if (pat == spec.end() || !pat->is_object() || content == spec.end() || !content->is_string()) {
      return invalid_argument("tokenizer.json: Replace decoder needs a 'pattern' object and a string 'content'");
    }
    const bool is_regex = pat->contains("Regex") && (*pat)["Regex"].is_string();
    if (!is_regex && !(pat->contains("String") && (*pat)["String"].is_string())) {
      return invalid_argument("tokenizer.json: Replace decoder pattern is neither Regex nor String");
    }
    step->content = content->get<std::string>();
    BATON_ASSIGN_OR_RETURN(
        step->pattern, Regex::compile((*pat)[is_regex ? "Regex" : "String"].get_ref<const std::string&>(), !is_regex));
  } else if (type == "Strip") {
    step->kind = Step::Kind::kStrip;
    BATON_ASSIGN_OR_RETURN(step->content, one_char(spec, "content", type));
    auto count = [&](const char* key) -> Result<size_t> {
      auto it = spec.find(key);
      if (it == spec.end() || !it->is_number_unsigned()) {
        return invalid_argument("tokenizer.json: Strip decoder's '{}' is not a non-negative integer", key);
      }
      return it->get<size_t>();
    };
    BATON_ASSIGN_OR_RETURN(step->start, count("start"));
    BATON_ASSIGN_OR_RETURN(step->stop, count("stop"));
  } else if (type == "Metaspace") {
    step->kind = Step::Kind::kMetaspace;
    BATON_ASSIGN_OR_RETURN(step->content, one_char(spec, "replacement", type));
    std::string scheme = spec.value("prepend_scheme", std::string("always"));
    auto add_prefix = spec.find("add_prefix_space");  // older files
    if (add_prefix != spec.end() && add_prefix->is_boolean() && !add_prefix->get<bool>()) scheme = "never";
    step->strip_first = scheme != "never";
  } else {
    return unimplemented("tokenizer.json: decoder type '{}' is not supported", type);
  }
  steps.push_back(std::move(step));
  return Status::ok();
}

}  // namespace

Decoder::Decoder() = default;
Decoder::Decoder(Decoder&&) noexcept = default;
Decoder& Decoder::operator=(Decoder&&) noexcept = default;
Decoder::~Decoder() = default;

Result<Decoder> Decoder::from_json(const Json& spec) {
  Decoder d;
  if (spec.is_null()) return d;
  d.none_ = false;
  BATON_RETURN_IF_ERROR(add_spec(spec, d.steps_, 0));
  return d;
}

bool Decoder::is_byte_level() const { return steps_.size() == 1 && steps_[0]->kind == Step::Kind::kByteLevel; }

std::string Decoder::decode(std::vector<std::string> tokens) const {
  std::string out;
  if (none_) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  for (const auto& step : steps_) step->apply(tokens);
  for (const auto& t : tokens) out += t;
  return out;
}

std::string Decoder::token_piece(std::string_view token) const {
  std::string piece(token);
  bool fused = false;
  for (const auto& step : steps_) {
    switch (step->kind) {
      case Step::Kind::kByteLevel: piece = byte_level_bytes(piece); break;
      case Step::Kind::kReplace: piece = replace_all(*step->pattern, step->content, piece); break;
      case Step::Kind::kByteFallback:
        if (auto b = byte_fallback_value(piece)) piece.assign(1, static_cast<char>(*b));
        break;
      case Step::Kind::kFuse: fused = true; break;
      case Step::Kind::kStrip:
        if (!fused) piece = step->strip(piece);
        break;
      case Step::Kind::kMetaspace: piece = step->metaspace(piece, /*drop=*/false); break;
    }
  }
  return piece;
}

}  // namespace baton::tokenizer

#include "tokenizer/tokenizer_json.h"

#include <nlohmann/detail/input/json_sax.hpp>

namespace baton::tokenizer {

namespace {

// Forwards every event to a DOM builder except those inside model.vocab and
// model.merges, which it collects itself.
class TokenizerJsonSax {
 public:
  explicit TokenizerJsonSax(TokenizerJson& out) : out_(out), dom_(out.rest, /*allow_exceptions=*/false) {}

  const std::string& error() const { return error_; }

  bool null() { return collecting() ? bad_value("null") : dom_.null(); }
  bool boolean(bool v) { return collecting() ? bad_value("a boolean") : dom_.boolean(v); }
  bool number_integer(int64_t v) {
    if (in_vocab()) return add_vocab(v);
    return collecting() ? bad_value("a number") : dom_.number_integer(v);
  }
  bool number_unsigned(uint64_t v) {
    if (in_vocab()) return add_vocab(v > static_cast<uint64_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v));
    return collecting() ? bad_value("a number") : dom_.number_unsigned(v);
  }
  bool number_float(double v, const std::string& s) {
    return collecting() ? bad_value("a fractional number") : dom_.number_float(v, s);
  }
  bool binary(Json::binary_t& b) { return dom_.binary(b); }
  bool string(std::string& s) {
    if (in_vocab()) return bad_value("a string");
    if (in_merges()) return add_merge_string(s);
    if (in_merge_pair()) {
      if (pair_.size() >= 2) return bad_merge();
      pair_.push_back(std::move(s));
      return true;
    }
    return dom_.string(s);
  }
  bool key(std::string& k) {
    if (in_vocab()) {
      key_ = std::move(k);
      return true;
    }
    if (in_merge_pair()) return bad_merge();
    frames_.back().key = k;
    return dom_.key(k);
  }
  bool start_object(std::size_t n) {
    if (in_vocab() || in_merge_pair()) return bad_value("an object");
    if (in_merges()) return bad_merge();
    push(Kind::kObject);
    if (in_vocab()) return dom_.start_object(0);  // keep "vocab": {} in the DOM
    return dom_.start_object(n);
  }
  bool end_object() {
    frames_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (in_vocab() || in_merge_pair()) return bad_value("an array");
    if (in_merges()) {
      push(Kind::kMergePair);
      pair_.clear();
      return true;
    }
    push(Kind::kArray);
    if (in_merges()) return dom_.start_array(0);  // keep "merges": [] in the DOM
    return dom_.start_array(n);
  }
  bool end_array() {
    if (in_merge_pair()) {
      frames_.pop_back();
      if (pair_.size() != 2) return bad_merge();
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      return true;
    }
    frames_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& last_token, const nlohmann::detail::exception& e) {
    if (error_.empty()) error_ = fmt::format("malformed tokenizer.json: {}", e.what());
    return false;
  }

 private:
  enum class Kind { kObject, kArray, kMergePair };
  struct Frame {
    Kind kind;
    std::string key;         // the last key read, for objects
    std::string parent_key;  // the key this container sits under
  };

  void push(Kind kind) {
    std::string parent = frames_.empty() ? std::string() : frames_.back().key;
    frames_.push_back({kind, {}, std::move(parent)});
  }
  // The container at the top is root.model.vocab / root.model.merges.
  bool at_model_child(Kind kind, std::string_view name) const {
    return frames_.size() == 3 && frames_[2].kind == kind && frames_[2].parent_key == name &&
           frames_[1].parent_key == "model" && frames_[1].kind == Kind::kObject && frames_[0].kind == Kind::kObject;
  }
  bool in_vocab() const { return at_model_child(Kind::kObject, "vocab"); }
  bool in_merges() const { return at_model_child(Kind::kArray, "merges"); }
  bool in_merge_pair() const { return !frames_.empty() && frames_.back().kind == Kind::kMergePair; }
  bool collecting() const { return in_vocab() || in_merges() || in_merge_pair(); }

  bool add_vocab(int64_t id) {
    if (id < 0 || id >= (1 << 30)) {
      error_ = fmt::format("tokenizer.json: vocab entry '{}' has an invalid id {}", key_, id);
      return false;
    }
    out_.vocab.emplace_back(std::move(key_), id);
    return true;
  }
  bool add_merge_string(const std::string& s) {
    const size_t space = s.find(' ', 1);
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) return bad_merge();
    out_.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    return true;
  }
  bool bad_merge() {
    error_ = fmt::format("tokenizer.json: merge {} is neither \"a b\" nor [\"a\", \"b\"]", out_.merges.size());
    return false;
  }
  bool bad_value(const char* what) {
    if (in_vocab()) {
      error_ = fmt::format("tokenizer.json: vocab entry '{}' has {} instead of an integer id", key_, what);
    } else {
      error_ = fmt::format("tokenizer.json: merge {} holds {}", out_.merges.size(), what);
    }
    return false;
  }

  TokenizerJson& out_;
  nlohmann::detail::json_sax_dom_parser<Json> dom_;
  std::vector<Frame> frames_;
  std::string key_;
  std::vector<std::string> pair_;
  std::string error_;
};

}  // namespace

Result<TokenizerJson> parse_tokenizer_json(std::string_view text) {
  // The loaders of normalizers, pre-tokenizers and decoders recurse into
  // "Sequence"s: a file nested 50,000 deep overflowed the stack. Real files
  // nest about 5 deep.
  BATON_RETURN_IF_ERROR(check_json_depth(text, "tokenizer.json", kMaxJsonDepth));
  TokenizerJson out;
  out.vocab.reserve(text.size() / 64);
  out.merges.reserve(text.size() / 64);
  TokenizerJsonSax sax(out);
  bool ok = false;
  try {
    ok = Json::sax_parse(text.begin(), text.end(), &sax);
  } catch (const std::exception& e) {
    return invalid_argument("malformed tokenizer.json: {}", e.what());
  }
  if (!ok) return invalid_argument("{}", sax.error().empty() ? "malformed tokenizer.json" : sax.error());
  return out;
}

}  // namespace baton::tokenizer

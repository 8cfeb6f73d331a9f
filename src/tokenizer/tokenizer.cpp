#include "tokenizer/tokenizer.h"

#include <filesystem>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/utf8.h"

namespace baton {

namespace {

namespace fs = std::filesystem;

// A special token in tokenizer_config.json: "<s>", {"content": "<s>", ...} or null.
Result<std::string> config_token(const Json& config, std::string_view key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return invalid_argument("tokenizer_config.json: '{}' is neither a string nor an object with 'content'", key);
}

// The post-processor's single-sequence template: ids before and after.
Status parse_post_processor(const Json& spec, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) {
  if (spec.is_null()) return Status::ok();
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    return invalid_argument("tokenizer.json: post_processor has no 'type'");
  }
  const auto& type = spec["type"].get_ref<const std::string&>();
  if (type == "ByteLevel") return Status::ok();  // offsets only; ids unchanged
  if (type == "Sequence") {
    auto it = spec.find("processors");
    if (it == spec.end() || !it->is_array()) {
      return invalid_argument("tokenizer.json: Sequence post_processor has no 'processors' array");
    }
    for (const auto& sub : *it) BATON_RETURN_IF_ERROR(parse_post_processor(sub, prefix, suffix));
    return Status::ok();
  }
  if (type != "TemplateProcessing") {
    return unimplemented("tokenizer.json: post_processor type '{}' is not supported", type);
  }
  auto single = spec.find("single");
  auto specials = spec.find("special_tokens");
  if (single == spec.end() || !single->is_array() || specials == spec.end() || !specials->is_object()) {
    return invalid_argument("tokenizer.json: TemplateProcessing lacks 'single' or 'special_tokens'");
  }
  bool seen_sequence = false;
  for (const auto& item : *single) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id") ||
        !item["SpecialToken"]["id"].is_string()) {
      return invalid_argument("tokenizer.json: TemplateProcessing item {} is neither Sequence nor SpecialToken",
                              item.dump());
    }
    const auto& name = item["SpecialToken"]["id"].get_ref<const std::string&>();
    auto tok = specials->find(name);
    if (tok == specials->end() || !tok->contains("ids") || !(*tok)["ids"].is_array()) {
      return invalid_argument("tokenizer.json: TemplateProcessing names special token '{}' without ids", name);
    }
    for (const auto& id : (*tok)["ids"]) {
      if (!id.is_number_integer()) return invalid_argument("tokenizer.json: special token '{}' has a bad id", name);
      (seen_sequence ? suffix : prefix).push_back(id.get<int32_t>());
    }
  }
  return Status::ok();
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::string& path) {
  std::error_code ec;
  fs::path json_path = path;
  if (fs::is_directory(json_path, ec)) json_path /= "tokenizer.json";
  if (!fs::is_regular_file(json_path, ec)) {
    return not_found("no tokenizer.json at '{}'", json_path.string());
  }
  const fs::path dir = json_path.parent_path();
  BATON_ASSIGN_OR_RETURN(std::string tokenizer_json, read_file(json_path.string()));
  std::string config_json;
  const fs::path config_path = dir / "tokenizer_config.json";
  if (fs::is_regular_file(config_path, ec)) {
    BATON_ASSIGN_OR_RETURN(config_json, read_file(config_path.string()));
  }
  auto tok = from_json_text(tokenizer_json, config_json);
  if (!tok.is_ok()) return tok.status().with_context(fmt::format("loading tokenizer from '{}'", dir.string()));
  // Newer checkpoints keep the template in its own file.
  const fs::path jinja_path = dir / "chat_template.jinja";
  if (!(*tok)->chat_template_ && (*tok)->chat_template_status_.code() == StatusCode::kNotFound &&
      fs::is_regular_file(jinja_path, ec)) {
    BATON_ASSIGN_OR_RETURN(std::string text, read_file(jinja_path.string()));
    auto ct = ChatTemplate::parse(text, (*tok)->template_tokens_);
    if (ct.is_ok()) {
      (*tok)->chat_template_ = std::move(ct).value();
    } else {
      (*tok)->chat_template_status_ = ct.status();
    }
  }
  return tok;
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json_text(std::string_view tokenizer_json,
                                                             std::string_view tokenizer_config_json) {
  // Json's accessors throw on a field of the wrong type (value("split", true)
  // on a string); such a file is malformed, not a crash.
  try {
    return build(tokenizer_json, tokenizer_config_json);
  } catch (const std::bad_alloc&) {
    return resource_exhausted("out of memory loading tokenizer.json");
  } catch (const std::exception& e) {
    return invalid_argument("malformed tokenizer.json or tokenizer_config.json: {}", e.what());
  }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::build(std::string_view tokenizer_json,
                                                    std::string_view tokenizer_config_json) {
  BATON_ASSIGN_OR_RETURN(tokenizer::TokenizerJson parsed, tokenizer::parse_tokenizer_json(tokenizer_json));
  const Json& j = parsed.rest;
  if (!j.is_object()) return invalid_argument("tokenizer.json is not a JSON object");
  auto field = [&](const char* key) -> const Json& {
    static const Json kNull;
    auto it = j.find(key);
    return it == j.end() ? kNull : *it;
  };
  if (!j.contains("model")) return invalid_argument("tokenizer.json has no 'model' section");

  std::unique_ptr<Tokenizer> t(new Tokenizer());
  BATON_ASSIGN_OR_RETURN(auto pre, tokenizer::PreTokenizer::from_json(field("pre_tokenizer")));
  t->pre_tokenizer_ = std::make_unique<tokenizer::PreTokenizer>(std::move(pre));
  BATON_ASSIGN_OR_RETURN(t->model_, tokenizer::BpeModel::from_json(j["model"], std::move(parsed.vocab), parsed.merges,
                                                                   t->pre_tokenizer_->byte_level()));
  BATON_ASSIGN_OR_RETURN(auto normalizer, tokenizer::Normalizer::from_json(field("normalizer")));
  t->normalizer_ = std::make_unique<tokenizer::Normalizer>(std::move(normalizer));
  BATON_ASSIGN_OR_RETURN(auto added, tokenizer::AddedVocabulary::from_json(field("added_tokens")));
  t->added_ = std::make_unique<tokenizer::AddedVocabulary>(std::move(added));
  BATON_RETURN_IF_ERROR(t->added_->normalize_patterns([&](const std::string& content) -> Result<std::string> {
    std::string out;
    BATON_RETURN_IF_ERROR(t->normalizer_->apply(content, out));
    return out;
  }));
  BATON_RETURN_IF_ERROR(parse_post_processor(field("post_processor"), t->prefix_ids_, t->suffix_ids_));
  BATON_RETURN_IF_ERROR(t->build_decoding(field("decoder")));

  t->vocab_size_ = t->model_->id_limit();
  const auto& added_tokens = t->added_->tokens();
  for (size_t i = 0; i < added_tokens.size(); ++i) {
    t->added_by_id_[added_tokens[i].id] = i;
    t->vocab_size_ = std::max(t->vocab_size_, added_tokens[i].id + 1);
  }
  for (int32_t id : t->prefix_ids_) {
    if (id < 0 || id >= t->vocab_size_)
      return invalid_argument("tokenizer.json: post_processor id {} is out of range", id);
  }
  for (int32_t id : t->suffix_ids_) {
    if (id < 0 || id >= t->vocab_size_)
      return invalid_argument("tokenizer.json: post_processor id {} is out of range", id);
  }

  if (tokenizer_config_json.empty()) {
    t->chat_template_status_ = not_found("no tokenizer_config.json, so no chat template");
    return t;
  }
  BATON_ASSIGN_OR_RETURN(Json config, parse_json(tokenizer_config_json, "tokenizer_config.json"));
  BATON_RETURN_IF_ERROR(t->load_config(config));
  return t;
}

Status Tokenizer::build_decoding(const Json& decoder_spec) {
  BATON_ASSIGN_OR_RETURN(auto decoder, tokenizer::Decoder::from_json(decoder_spec));
  decoder_ = std::make_unique<tokenizer::Decoder>(std::move(decoder));
  concat_decode_ = decoder_->is_byte_level() && model_->byte_level();
  for (const auto& t : added_->tokens()) {
    if (concat_decode_) {
      auto bytes = tokenizer::byte_level_to_bytes(t.pattern);
      added_bytes_.push_back(bytes ? std::move(*bytes) : t.pattern);
    } else {
      added_bytes_.push_back(decoder_->token_piece(t.pattern));
    }
  }
  if (!concat_decode_) {
    model_pieces_.resize(static_cast<size_t>(model_->id_limit()));
    for (int32_t id = 0; id < model_->id_limit(); ++id) {
      if (model_->has_id(id)) model_pieces_[id] = decoder_->token_piece(model_->id_token(id));
    }
  }
  return Status::ok();
}

Status Tokenizer::load_config(const Json& config) {
  if (!config.is_object()) return invalid_argument("tokenizer_config.json is not a JSON object");
  struct Named {
    const char* key;
    std::string* name;
    std::optional<int32_t>* id;
  };
  for (Named n : {Named{"bos_token", &bos_token_, &bos_id_}, Named{"eos_token", &eos_token_, &eos_id_},
                  Named{"pad_token", &pad_token_, &pad_id_}}) {
    BATON_ASSIGN_OR_RETURN(*n.name, config_token(config, n.key));
    if (n.name->empty()) continue;
    *n.id = token_to_id(*n.name);
    if (!n.id->has_value()) {
      return invalid_argument("tokenizer_config.json: {} '{}' is not a token of the vocabulary", n.key, *n.name);
    }
  }
  // Every special token the template may print (bos_token, eos_token, ...).
  template_tokens_ = {bos_token_, eos_token_, "", pad_token_};
  if (auto unk = config_token(config, "unk_token"); unk.is_ok()) template_tokens_.unk_token = *unk;
  auto ct = config.find("chat_template");
  std::string text;
  if (ct == config.end() || ct->is_null()) {
    chat_template_status_ = not_found("tokenizer_config.json has no chat_template");
    return Status::ok();
  }
  if (ct->is_string()) {
    text = ct->get<std::string>();
  } else if (ct->is_array()) {  // [{"name": "default", "template": "..."}, ...]
    for (const auto& entry : *ct) {
      auto name = entry.is_object() ? entry.find("name") : entry.end();
      if (entry.is_object() && name != entry.end() && name->is_string() && *name == "default" &&
          entry.contains("template") && entry["template"].is_string()) {
        text = entry["template"].get<std::string>();
      }
    }
    if (text.empty()) {
      chat_template_status_ = not_found("tokenizer_config.json has no chat_template named 'default'");
      return Status::ok();
    }
  } else {
    return invalid_argument("tokenizer_config.json: chat_template is neither a string nor a list");
  }
  auto recognized = ChatTemplate::parse(text, template_tokens_);
  if (recognized.is_ok()) {
    chat_template_ = std::move(recognized).value();
  } else {
    chat_template_status_ = recognized.status();
  }
  return Status::ok();
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (auto bad = tokenizer::find_invalid_utf8(text)) {
    return invalid_argument("text is not valid UTF-8: bad byte 0x{:02X} at offset {}", static_cast<uint8_t>(text[*bad]),
                            *bad);
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), prefix_ids_.begin(), prefix_ids_.end());
  std::vector<tokenizer::Segment> segments;
  added_->split(text, /*normalized=*/false, segments);
  std::string scratch;
  for (const auto& seg : segments) {
    if (seg.token_id >= 0) {
      ids.push_back(seg.token_id);
    } else {
      BATON_RETURN_IF_ERROR(encode_text(seg.text, seg.text.data() == text.data(), ids, scratch));
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

Status Tokenizer::encode_text(std::string_view text, bool at_input_start, std::vector<int32_t>& ids,
                              std::string& scratch) const {
  std::string_view normalized = text;
  if (!normalizer_->is_identity()) {
    BATON_RETURN_IF_ERROR(normalizer_->apply(text, scratch));
    normalized = scratch;
  }
  std::vector<tokenizer::Segment> segments;
  if (added_->has_normalized_tokens()) {
    added_->split(normalized, /*normalized=*/true, segments);
  } else {
    segments.push_back({normalized, -1});
  }
  std::vector<std::string_view> pieces;
  tokenizer::PieceArena arena;
  for (const auto& seg : segments) {
    if (seg.token_id >= 0) {
      ids.push_back(seg.token_id);
      continue;
    }
    pieces.clear();
    const bool at_start = at_input_start && seg.text.data() == normalized.data();
    BATON_RETURN_IF_ERROR(pre_tokenizer_->split(seg.text, at_start, pieces, arena));
    for (auto piece : pieces) model_->encode_word(piece, ids);
  }
  return Status::ok();
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) return added_bytes_[it->second];
  if (!model_->has_id(id)) return {};
  return concat_decode_ ? std::string_view(model_->id_bytes(id)) : std::string_view(model_pieces_[id]);
}

Result<std::string> Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  if (!concat_decode_) {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
      if (id < 0) return invalid_argument("cannot decode negative token id {}", id);
      if (skip_special_tokens && is_special(id)) continue;
      auto it = added_by_id_.find(id);
      if (it != added_by_id_.end()) {
        tokens.push_back(added_->tokens()[it->second].pattern);
      } else if (model_->has_id(id)) {
        tokens.push_back(model_->id_token(id));
      }
    }
    return decoder_->decode(std::move(tokens));
  }
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0) return invalid_argument("cannot decode negative token id {}", id);
    if (skip_special_tokens && is_special(id)) continue;
    bytes.append(token_bytes(id));
  }
  if (!tokenizer::find_invalid_utf8(bytes)) return bytes;
  std::string text;
  tokenizer::append_utf8_lossy(text, bytes);
  return text;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  for (const auto& t : added_->tokens()) {
    if (t.content == token) return t.id;
  }
  return model_->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) return added_->tokens()[it->second].content;
  if (model_->has_id(id)) return model_->id_token(id);
  return std::nullopt;
}

Result<int32_t> Tokenizer::special_token_id(std::string_view name) const {
  for (const auto& t : added_->tokens()) {
    if (t.content == name) return t.id;
  }
  return not_found("unknown special token '{}': the tokenizer has no added token of that name", name);
}

bool Tokenizer::is_special(int32_t id) const {
  auto it = added_by_id_.find(id);
  return it != added_by_id_.end() && added_->tokens()[it->second].special;
}

Result<std::string> Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages,
                                                   const ChatTemplateOptions& options) const {
  if (!chat_template_) return chat_template_status_;
  return chat_template_->render(messages, options);
}

Result<ChatTemplateFamily> Tokenizer::chat_template_family() const {
  if (!chat_template_) return chat_template_status_;
  return chat_template_->family();
}

}  // namespace baton

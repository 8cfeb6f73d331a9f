#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "tokenizer/regex.h"

namespace baton::tokenizer {

namespace {

// GPT-2's pattern, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// HF's SplitDelimiterBehavior.
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Result<Behavior> parse_behavior(const Json& spec) {
  auto it = spec.find("behavior");
  if (it == spec.end() || !it->is_string()) return invalid_argument("tokenizer.json: Split has no 'behavior'");
  const auto& b = it->get_ref<const std::string&>();
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  return unimplemented("tokenizer.json: Split behavior '{}' is not supported", b);
}

struct Span {
  size_t start;
  size_t end;
  bool is_match;
};

struct Piece {
  std::string_view text;
  bool at_start;  // begins at offset 0 of the input
};

// HF NormalizedString::split: the text cut into match / non-match spans, then
// grouped by the behaviour; removed and empty spans are dropped.
void split_by_matches(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches, bool invert,
                      Behavior behavior, std::vector<Piece>& out) {
  const std::string_view text = piece.text;
  if (behavior == Behavior::kIsolated) {  // every match and every gap: the common case, without copies
    size_t prev = 0;
    for (auto [start, end] : matches) {
      if (start > prev) out.push_back({text.substr(prev, start - prev), piece.at_start && prev == 0});
      out.push_back({text.substr(start, end - start), piece.at_start && start == 0});
      prev = end;
    }
    if (prev < text.size()) out.push_back({text.substr(prev), piece.at_start && prev == 0});
    return;
  }
  std::vector<Span> spans;
  spans.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (auto [start, end] : matches) {
    if (start > prev) spans.push_back({prev, start, invert});
    spans.push_back({start, end, !invert});
    prev = end;
  }
  if (prev < text.size()) spans.push_back({prev, text.size(), invert});

  std::vector<Span> groups;  // is_match here means "remove"
  groups.reserve(spans.size());
  switch (behavior) {
    case Behavior::kIsolated:  // handled above
    case Behavior::kRemoved: groups = spans; break;
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !groups.empty()) {
          groups.back().end = s.end;
        } else {
          groups.push_back({s.start, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !groups.empty()) {
          groups.back().end = s.end;
        } else {
          groups.push_back({s.start, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !groups.empty()) {
          groups.back().start = it->start;
        } else {
          groups.push_back({it->start, it->end, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(groups.begin(), groups.end());
      break;
    }
  }
  for (const Span& g : groups) {
    if (g.is_match || g.end <= g.start) continue;
    out.push_back({text.substr(g.start, g.end - g.start), piece.at_start && g.start == 0});
  }
}

}  // namespace

struct PreTokenizer::Step {
  enum class Kind { kSplit, kByteLevelPrefix, kMetaspace };
  Kind kind = Kind::kSplit;
  std::unique_ptr<Regex> regex;  // kSplit; kMetaspace: the replacement, when it splits
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  std::string replacement;  // kMetaspace
  enum class Prepend { kAlways, kFirst, kNever } prepend = Prepend::kAlways;

  Status apply(const Piece& piece, std::vector<Piece>& out, PieceArena& arena,
               std::vector<std::pair<size_t, size_t>>& matches) const {
    switch (kind) {
      case Kind::kSplit:
        matches.clear();
        BATON_RETURN_IF_ERROR(regex->find_all(piece.text, matches));
        split_by_matches(piece, matches, invert, behavior, out);
        return Status::ok();
      case Kind::kByteLevelPrefix:
        if (piece.text.starts_with(' ')) {
          out.push_back(piece);
        } else {
          out.push_back({arena.emplace_back(" " + std::string(piece.text)), piece.at_start});
        }
        return Status::ok();
      case Kind::kMetaspace: return apply_metaspace(piece, out, arena, matches);
    }
    return Status::ok();
  }

  Status apply_metaspace(const Piece& piece, std::vector<Piece>& out, PieceArena& arena,
                         std::vector<std::pair<size_t, size_t>>& matches) const {
    std::string& s = arena.emplace_back();
    s.reserve(piece.text.size() + replacement.size());
    const bool prepend_here = prepend == Prepend::kAlways || (prepend == Prepend::kFirst && piece.at_start);
    // HF checks after replacing the spaces: a leading space counts as one.
    if (prepend_here && !piece.text.starts_with(replacement) && !piece.text.starts_with(' ')) s = replacement;
    for (char c : piece.text) {
      if (c == ' ') {
        s += replacement;
      } else {
        s += c;
      }
    }
    const Piece rewritten{s, piece.at_start};
    if (!regex) {
      if (!s.empty()) out.push_back(rewritten);
      return Status::ok();
    }
    matches.clear();
    BATON_RETURN_IF_ERROR(regex->find_all(s, matches));
    split_by_matches(rewritten, matches, /*invert=*/false, Behavior::kMergedWithNext, out);
    return Status::ok();
  }
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

namespace {

using Step = PreTokenizer::Step;

Result<std::unique_ptr<Step>> split_step(std::string_view pattern, bool literal, Behavior behavior, bool invert) {
  auto step = std::make_unique<Step>();
  BATON_ASSIGN_OR_RETURN(step->regex, Regex::compile(pattern, literal));
  step->behavior = behavior;
  step->invert = invert;
  return step;
}

Result<std::unique_ptr<Step>> metaspace_step(const Json& spec) {
  auto step = std::make_unique<Step>();
  step->kind = Step::Kind::kMetaspace;
  auto repl = spec.find("replacement");
  if (repl == spec.end() || !repl->is_string() || repl->get_ref<const std::string&>().empty()) {
    return invalid_argument("tokenizer.json: Metaspace has no 'replacement' character");
  }
  step->replacement = repl->get<std::string>();
  const std::string scheme = spec.value("prepend_scheme", std::string("always"));
  if (scheme == "always") {
    step->prepend = Step::Prepend::kAlways;
  } else if (scheme == "first") {
    step->prepend = Step::Prepend::kFirst;
  } else if (scheme == "never") {
    step->prepend = Step::Prepend::kNever;
  } else {
    return invalid_argument("tokenizer.json: Metaspace prepend_scheme '{}' is none of always/first/never", scheme);
  }
  auto add_prefix = spec.find("add_prefix_space");  // older files
  if (add_prefix != spec.end() && add_prefix->is_boolean() && !add_prefix->get<bool>()) {
    step->prepend = Step::Prepend::kNever;
  }
  if (spec.value("split", true)) {
    BATON_ASSIGN_OR_RETURN(step->regex, Regex::compile(step->replacement, true));
  }
  return step;
}

Status add_spec(const Json& spec, std::vector<std::unique_ptr<Step>>& steps, bool& byte_level, int depth) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    return invalid_argument("tokenizer.json: pre_tokenizer has no 'type'");
  }
  if (depth > 8) return invalid_argument("tokenizer.json: pre_tokenizer Sequences nest too deeply");
  const auto& type = spec["type"].get_ref<const std::string&>();
  if (type == "Sequence") {
    auto it = spec.find("pretokenizers");
    if (it == spec.end() || !it->is_array()) {
      return invalid_argument("tokenizer.json: Sequence pre_tokenizer has no 'pretokenizers' array");
    }
    for (const auto& sub : *it) BATON_RETURN_IF_ERROR(add_spec(sub, steps, byte_level, depth + 1));
    return Status::ok();
  }
  if (type == "Split") {
    BATON_ASSIGN_OR_RETURN(Behavior behavior, parse_behavior(spec));
    const bool invert = spec.value("invert", false);
    auto pat = spec.find("pattern");
    if (pat == spec.end() || !pat->is_object()) return invalid_argument("tokenizer.json: Split has no 'pattern'");
    const bool is_regex = pat->contains("Regex") && (*pat)["Regex"].is_string();
    if (!is_regex && !(pat->contains("String") && (*pat)["String"].is_string())) {
      return invalid_argument("tokenizer.json: Split pattern is neither Regex nor String");
    }
    const auto& text = (*pat)[is_regex ? "Regex" : "String"].get_ref<const std::string&>();
    if (text.empty()) return Status::ok();  // an empty pattern matches nothing (HF)
    BATON_ASSIGN_OR_RETURN(auto step, split_step(text, !is_regex, behavior, invert));
    steps.push_back(std::move(step));
    return Status::ok();
  }
  if (type == "ByteLevel") {
    if (spec.value("add_prefix_space", false)) {
      auto step = std::make_unique<Step>();
      step->kind = Step::Kind::kByteLevelPrefix;
      steps.push_back(std::move(step));
    }
    if (spec.value("use_regex", true)) {
      BATON_ASSIGN_OR_RETURN(auto step, split_step(kGpt2Pattern, false, Behavior::kIsolated, false));
      steps.push_back(std::move(step));
    }
    byte_level = true;
    return Status::ok();
  }
  if (type == "Metaspace") {
    BATON_ASSIGN_OR_RETURN(auto step, metaspace_step(spec));
    steps.push_back(std::move(step));
    return Status::ok();
  }
  if (type == "Digits") {  // char::is_numeric is \p{N}
    const Behavior behavior = spec.value("individual_digits", false) ? Behavior::kIsolated : Behavior::kContiguous;
    BATON_ASSIGN_OR_RETURN(auto step, split_step(R"(\p{N})", false, behavior, false));
    steps.push_back(std::move(step));
    return Status::ok();
  }
  return unimplemented("tokenizer.json: pre_tokenizer type '{}' is not supported", type);
}

}  // namespace

Result<PreTokenizer> PreTokenizer::from_json(const Json& spec) {
  PreTokenizer p;
  if (spec.is_null()) return p;
  BATON_RETURN_IF_ERROR(add_spec(spec, p.steps_, p.byte_level_, 0));
  return p;
}

Status PreTokenizer::split(std::string_view text, bool at_input_start, std::vector<std::string_view>& out,
                           PieceArena& arena) const {
  if (text.empty()) return Status::ok();
  if (steps_.empty()) {
    out.push_back(text);
    return Status::ok();
  }
  std::vector<Piece> pieces{{text, at_input_start}};
  std::vector<Piece> next;
  std::vector<std::pair<size_t, size_t>> matches;
  for (const auto& step : steps_) {
    next.clear();
    for (const Piece& piece : pieces) BATON_RETURN_IF_ERROR(step->apply(piece, next, arena, matches));
    pieces.swap(next);
  }
  for (const Piece& piece : pieces) out.push_back(piece.text);
  return Status::ok();
}

}  // namespace baton::tokenizer

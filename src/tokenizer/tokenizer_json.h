// Fast reading of tokenizer.json: one SAX pass that pulls model.vocab and
// model.merges (most of the file) straight into flat vectors and builds a
// DOM only for the small rest, instead of a std::map node per token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton::tokenizer {

struct TokenizerJson {
  Json rest;  // the whole document, with model.vocab and model.merges left empty
  std::vector<std::pair<std::string, int64_t>> vocab;       // in file order
  std::vector<std::pair<std::string, std::string>> merges;  // by rank
};

// Parses tokenizer.json text. Syntax errors are kInvalidArgument
// ("malformed tokenizer.json: ..."), as are nesting deeper than
// kMaxJsonDepth, vocab entries whose id is not an integer and merges that are
// neither "a b" nor ["a", "b"].
Result<TokenizerJson> parse_tokenizer_json(std::string_view text);

}  // namespace baton::tokenizer

// JSON helpers over nlohmann::json: typed field access that returns a Status
// naming the field, instead of throwing.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace baton {

using Json = nlohmann::json;

// The deepest nesting of arrays and objects any JSON the system reads may
// have (HTTP bodies, KV frames, etcd values, specs), as common web servers do.
inline constexpr int kMaxJsonDepth = 64;

// Parses text; a syntax error, a number out of range (1e400) or nesting
// deeper than kMaxJsonDepth becomes kInvalidArgument naming `what` and the
// position. Never throws.
Result<Json> parse_json(std::string_view text, std::string_view what = "JSON");

// kInvalidArgument if arrays/objects in `text` nest deeper than max_depth
// (strings are skipped; the text need not be valid JSON). Linear, no recursion.
Status check_json_depth(std::string_view text, std::string_view what, int max_depth);

// Serialises without throwing: invalid UTF-8 in strings is replaced by
// U+FFFD (nlohmann's dump() throws type_error.316 on it). indent -1: compact.
std::string dump_json(const Json& j, int indent = -1);

// Reads a whole file and parses it.
Result<Json> read_json_file(const std::string& path);

// Reads a whole file as bytes.
Result<std::string> read_file(const std::string& path);

// Writes bytes to a file (truncating).
Status write_file(const std::string& path, std::string_view data);

// Typed optional field: absent or null -> fallback; wrong type -> error.
template <typename T>
Result<T> json_get(const Json& obj, std::string_view key, T fallback) {
  if (!obj.is_object()) return invalid_argument("expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  try {
    return it->template get<T>();
  } catch (const std::exception&) {
    return invalid_argument("field '{}' has the wrong type ({})", key, it->type_name());
  }
}

// Typed required field: absent -> error naming it.
template <typename T>
Result<T> json_require(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return invalid_argument("expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return invalid_argument("missing field '{}'", key);
  try {
    return it->template get<T>();
  } catch (const std::exception&) {
    return invalid_argument("field '{}' has the wrong type ({})", key, it->type_name());
  }
}

}  // namespace baton

// JSON helpers over nlohmann::json: typed field access that returns a Status
// naming the field, instead of throwing.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

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

// A JSON value as T, or an error naming `key`: the wrong type, or a number T
// cannot hold. Numbers are checked before any conversion (nlohmann's get<int>
// of 1e300 is undefined behaviour, of 4294967297 is 1): an integral T takes
// integers in its range and floats with no fraction in its range; a floating
// T takes any number its range holds.
template <typename T>
Result<T> json_value_as(const Json& v, std::string_view key) {
  if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
    if (!v.is_number()) return invalid_argument("field '{}' has the wrong type ({})", key, v.type_name());
    if constexpr (std::is_integral_v<T>) {
      if (v.is_number_unsigned()) {
        const uint64_t u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<T>::max()))
          return invalid_argument("field '{}' ({}) is out of range", key, u);
        return static_cast<T>(u);
      }
      if (v.is_number_integer()) {
        const int64_t i = v.get<int64_t>();
        if ((std::is_unsigned_v<T> && i < 0) ||
            (std::is_signed_v<T> && (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
                                     i > static_cast<int64_t>(std::numeric_limits<T>::max()))))
          return invalid_argument("field '{}' ({}) is out of range", key, i);
        return static_cast<T>(i);
      }
      const double d = v.get<double>();
      // [min, max + 1): the bounds as doubles are exact powers of two (or 0).
      const double lo = static_cast<double>(std::numeric_limits<T>::min());
      const double hi = 2.0 * static_cast<double>(std::numeric_limits<T>::max() / 2 + 1);
      if (!(d >= lo && d < hi) || d != std::trunc(d))
        return invalid_argument("field '{}' must be an integer in range, got {}", key, d);
      return static_cast<T>(d);
    } else {
      const double d = v.get<double>();
      if (std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max()))
        return invalid_argument("field '{}' ({}) is out of range", key, d);
      return static_cast<T>(d);
    }
  } else {
    try {
      return v.template get<T>();
    } catch (const std::exception&) {
      return invalid_argument("field '{}' has the wrong type ({})", key, v.type_name());
    }
  }
}

// Typed optional field: absent or null -> fallback; wrong type or a number
// out of T's range -> error (json_value_as).
template <typename T>
Result<T> json_get(const Json& obj, std::string_view key, T fallback) {
  if (!obj.is_object()) return invalid_argument("expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  return json_value_as<T>(*it, key);
}

// Typed required field: absent -> error naming it.
template <typename T>
Result<T> json_require(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return invalid_argument("expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return invalid_argument("missing field '{}'", key);
  return json_value_as<T>(*it, key);
}

}  // namespace baton

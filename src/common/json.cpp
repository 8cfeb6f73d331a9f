#include "common/json.h"

#include <fstream>
#include <sstream>

namespace baton {

Status check_json_depth(std::string_view text, std::string_view what, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return invalid_argument("malformed {}: nested deeper than {} levels (at byte {})", what, max_depth, i);
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return Status::ok();
}

Result<Json> parse_json(std::string_view text, std::string_view what) {
  // Depth first: a deep document costs recursion in every later copy or dump.
  BATON_RETURN_IF_ERROR(check_json_depth(text, what, kMaxJsonDepth));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Re-parse with exceptions to recover the reason and position for the
    // message: a syntax error (parse_error) or a number out of range
    // (out_of_range.406, e.g. 1e400). Every library exception stays here.
    try {
      auto reparsed = Json::parse(text);
      (void)reparsed;
    } catch (const Json::exception& e) {
      return invalid_argument("malformed {}: {}", what, e.what());
    } catch (const std::exception& e) {
      return invalid_argument("malformed {}: {}", what, e.what());
    }
    return invalid_argument("malformed {}", what);
  }
  return j;
}

std::string dump_json(const Json& j, int indent) {
  // error_handler_t::replace: invalid UTF-8 in a string becomes U+FFFD
  // instead of throwing type_error.316, so an error reply that quotes a
  // client's bytes can always be written.
  return j.dump(indent, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open '{}'", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return data_loss("error reading '{}'", path);
  return ss.str();
}

Status write_file(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return unavailable("cannot open '{}' for writing", path);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) return data_loss("error writing '{}'", path);
  return Status::ok();
}

Result<Json> read_json_file(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(std::string text, read_file(path));
  return parse_json(text, path);
}

}  // namespace baton

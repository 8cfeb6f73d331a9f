#include "common/json.h"

#include <fstream>
#include <sstream>

namespace baton {

Result<Json> parse_json(std::string_view text, std::string_view what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Re-parse with exceptions to recover the position for the message.
    try {
      auto reparsed = Json::parse(text);
    (void)reparsed;
    } catch (const Json::parse_error& e) {
      return invalid_argument("malformed {}: {}", what, e.what());
    }
    return invalid_argument("malformed {}", what);
  }
  return j;
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

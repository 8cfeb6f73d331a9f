#include "common/files.h"

#include <system_error>

namespace baton {

bool path_exists(const std::filesystem::path& path) noexcept {
  std::error_code ec;
  return std::filesystem::exists(path, ec) && !ec;
}

}  // namespace baton

// Looking at the file system without exceptions: std::filesystem's plain
// calls throw when a path cannot be looked at (a name over the system's
// limit, a directory without search permission), and a path from a spec file
// or a flag would then end the process instead of failing one request.
#pragma once

#include <filesystem>

namespace baton {

// Whether `path` names something on disk: false, not an exception, when it
// cannot be looked at; the open that follows then says what is wrong.
bool path_exists(const std::filesystem::path& path) noexcept;

}  // namespace baton

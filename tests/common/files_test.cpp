// path_exists (common/files.h): a path that cannot be looked at is "not
// there", never an exception.
#include "common/files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace baton {
namespace {

TEST(FilesTest, PathExistsSeesFilesAndFolders) {
  EXPECT_TRUE(path_exists(std::filesystem::temp_directory_path()));
  EXPECT_TRUE(path_exists("/proc/self/status"));
  EXPECT_FALSE(path_exists("/nonexistent/baton/files_test"));
  EXPECT_FALSE(path_exists(""));
}

TEST(FilesTest, AnUnlookablePathIsNotThereRatherThanAnException) {
  // A name over the system's 255-byte limit: std::filesystem::exists(path)
  // throws filesystem_error ("File name too long") on it.
  const std::string too_long = "/tmp/" + std::string(300, 'x');
  EXPECT_THROW((void)std::filesystem::exists(too_long), std::filesystem::filesystem_error);
  EXPECT_FALSE(path_exists(too_long));
  EXPECT_FALSE(path_exists(std::string(5000, 'y') + "/z"));
}

}  // namespace
}  // namespace baton

// `baton profile` on a machine without a GPU: a clear "no GPU", not the CUDA
// runtime's "driver version is insufficient" (issue 22, finding 8).
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "cli/run_baton.h"

namespace baton {
namespace {

bool has_nvidia_device() {
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/dev", ec), end; !ec && it != end; it.increment(ec)) {
    if (std::regex_match(it->path().filename().string(), std::regex("nvidia[0-9]+"))) return true;
  }
  return false;
}

TEST(ProfileCommand, SaysNoGpuWithoutOne) {
  if (has_nvidia_device()) GTEST_SKIP() << "this machine has a GPU";
  const auto r = testing::run_baton("profile --quick --json /dev/null --md /dev/null");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("baton profile: no GPU"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("insufficient"), std::string::npos) << r.out;
}

// --mixed-steps (the planner's agg steps) is parsed before the GPU is looked
// for: a malformed step is refused naming itself; a good one gets as far as
// the GPU check.
TEST(ProfileCommand, MixedStepsAreCheckedWhenParsed) {
  for (const char* bad : {"32:8192:512", "32:8192:512:x", "32:-1:512:0", "0:0:0:0", "4:0:16:0", "1:2:3:4:5"}) {
    const auto r = testing::run_baton(std::string("profile --mixed-steps ") + bad + " --json /dev/null --md /dev/null");
    EXPECT_NE(r.rc, 0) << bad;
    EXPECT_NE(r.out.find("--mixed-steps"), std::string::npos) << r.out;
  }
  if (has_nvidia_device()) GTEST_SKIP() << "this machine has a GPU";
  const auto r = testing::run_baton(
      "profile --quick --mixed-steps 32:8192:512:7680,64:1024:1024:0 --json /dev/null "
      "--md /dev/null");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("baton profile: no GPU"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace baton

// `baton bench compare` on result files that are not what `baton bench
// --out` writes: each is an error naming the problem and the files, with
// exit status 1, never an abort (a field of another type used to throw out
// of nlohmann::json and end the process).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli/run_baton.h"

namespace baton {
namespace {

class BenchCompareCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("baton_bench_compare_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(BenchCompareCommandTest, MalformedResultsAreErrorsNotAborts) {
  struct Case {
    std::string body, says;
  };
  for (const Case& c : {
           Case{R"({"format": 7})", "is not a baton bench result"},
           Case{R"([1, 2])", "is not a baton bench result"},
           Case{R"({"format": "baton-bench-result/1", "label": "a"})", "a result needs a 'label' and 'runs'"},
           Case{R"({"format": "baton-bench-result/1", "label": "a", "runs": [{"metrics": 5}]})",
                "lack fields a comparison reads"},
           Case{R"({"format": "baton-bench-result/1", "label": "a", "runs": [7]})", "lack fields a comparison reads"},
       }) {
    const std::string a = write("a.json", c.body);
    const std::string b = write(
        "b.json", R"({"format": "baton-bench-result/1", "label": "b", "runs": [], "max_sustainable_rps": 1.0})");
    const auto out = testing::run_baton("bench compare " + a + " " + b + " --out " + (dir_ / "out").string());
    EXPECT_EQ(out.rc, 1) << c.body << "\n" << out.out;
    EXPECT_NE(out.out.find(c.says), std::string::npos) << c.body << "\n" << out.out;
  }
}

}  // namespace
}  // namespace baton

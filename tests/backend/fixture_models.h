// Test helper: the Hugging Face fixture models under tests/data/fixtures/
// models (one per architecture, each with golden.json), as test parameters.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace baton::testing {

inline const std::vector<std::string> kFixtureModels = {"llama3-tiny", "qwen2-tiny", "qwen3-tiny", "qwen3-moe-tiny",
                                                        "deepseek-v3-tiny"};

inline std::string fixture_model_dir(const std::string& name) {
  return std::string(BATON_TEST_DATA) + "/fixtures/models/" + name;
}

// A model or preset name as a test name: "qwen3-moe-tiny" -> "qwen3_moe_tiny".
inline std::string model_param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

}  // namespace baton::testing

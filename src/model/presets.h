// Named model shapes for `baton init-model`: the real shapes of served models
// (Llama-3.1-8B and 70B, Qwen3-8B, Qwen3-30B-A3B and 235B-A22B, DeepSeek-V3),
// the small embedded default model,
// and tiny ones for tests.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "model/model_config.h"

namespace baton {

struct ModelPreset {
  std::string name;
  std::string description;
  ModelConfig config;
};

// Every preset, in a stable order.
const std::vector<ModelPreset>& model_presets();

// The preset `name`; kNotFound listing the known names otherwise.
Result<ModelPreset> find_model_preset(const std::string& name);

// Which npm tokenizer package suits an architecture: "tokenizer-llama3" for
// llama, "tokenizer-qwen3" otherwise.
std::string default_tokenizer_package(Arch arch);

}  // namespace baton

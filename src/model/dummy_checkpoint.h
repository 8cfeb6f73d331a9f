// `--load-format dummy` (as vLLM's): a Checkpoint with random weights made
// from a config alone, no weight files read. The config comes from a preset
// name (model/presets.h) or from a folder's config.json (its weight files,
// if any, are ignored). Each tensor is generated in memory the first time it
// is asked for (normal(0, 0.02), norms 1, as init-model writes them; the
// same seed gives the same values) and kept while the checkpoint lives.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "model/checkpoint.h"

namespace baton {

// A dummy checkpoint of `config` (its FP8 quantization, if any, is dropped:
// the weights are made in config.torch_dtype). `dir` is what dir() reports:
// the folder the config came from, or where the model's tokenizer is.
std::unique_ptr<Checkpoint> make_dummy_checkpoint(ModelConfig config, std::string dir, uint64_t seed = 0);

// The seed of a checkpoint made by make_dummy_checkpoint; nullopt for any
// other. A backend that can make random weights where they run (the CUDA
// backend, on the device) does so instead of asking for the tensors, so a
// model larger than host memory or the disk can be served and profiled.
std::optional<uint64_t> dummy_checkpoint_seed(const Checkpoint& checkpoint);

// `model_arg` a preset name or a folder with config.json (empty: the
// embedded default model): its config and folder, for make_dummy_checkpoint.
// For a preset, the folder is the architecture's default tokenizer folder
// when one is found, else empty.
struct DummyModelSource {
  ModelConfig config;
  std::string dir;
  std::string name;  // the preset's name, or the folder
};
Result<DummyModelSource> resolve_dummy_model(const std::string& model_arg);

}  // namespace baton

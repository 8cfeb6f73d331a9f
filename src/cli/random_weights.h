// Checkpoints whose weights are random. `baton init-model` writes, next to
// config.json, a marker file random-weights.json:
//   {"written_by": "baton init-model", "preset": "default", "seed": 0}
// (a separate file, so config.json stays exactly what Hugging Face tools
// read). `baton generate` and `baton serve` look for it and, when present,
// tell the user that what the model writes is noise and how to serve real
// weights instead. A real checkpoint downloaded from the Hub has no marker.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace baton::cli {

inline constexpr const char* kRandomWeightsMarker = "random-weights.json";

// Writes the marker into model_dir.
Status mark_random_weights(const std::string& model_dir, const std::string& preset, uint64_t seed);

// The one-line note to print for model_dir: set when it holds the marker.
std::optional<std::string> random_weights_note(const std::string& model_dir);

}  // namespace baton::cli

#include "cli/random_weights.h"

#include <filesystem>

#include <fmt/format.h>

#include "common/json.h"

namespace baton::cli {

Status mark_random_weights(const std::string& model_dir, const std::string& preset, uint64_t seed) {
  const Json marker = {{"written_by", "baton init-model"}, {"preset", preset}, {"seed", seed}};
  return write_file((std::filesystem::path(model_dir) / kRandomWeightsMarker).string(), marker.dump(2) + "\n");
}

std::optional<std::string> random_weights_note(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / kRandomWeightsMarker).string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::string preset = "?";
  if (auto marker = read_json_file(path); marker.is_ok() && marker->is_object()) {
    preset = marker->value("preset", preset);
  }
  return fmt::format(
      "note: {} holds RANDOM weights (baton init-model --preset {}): the text it generates is noise, not "
      "language. To serve a real model, download a Hugging Face checkpoint and pass its folder as --model DIR "
      "(README: \"Real weights\").",
      model_dir, preset);
}

}  // namespace baton::cli

// Checkpoint::open: config.json plus one model.safetensors, or the shards
// named by model.safetensors.index.json, every file memory-mapped.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/ranges.h>

#include "model/checkpoint.h"
#include "model/fp8_checkpoint.h"
#include "model/safetensors_file.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

class SafetensorsCheckpoint final : public Checkpoint {
 public:
  SafetensorsCheckpoint(std::string dir, ModelConfig config) : dir_(std::move(dir)), config_(std::move(config)) {}

  const ModelConfig& config() const override { return config_; }
  const std::string& dir() const override { return dir_; }
  bool has(const std::string& name) const override { return tensors_.count(name) > 0; }

  std::vector<std::string> tensor_names() const override {
    std::vector<std::string> names;
    names.reserve(tensors_.size());
    for (const auto& [name, view] : tensors_) names.push_back(name);
    return names;
  }

  Result<TensorView> tensor(const std::string& name, const std::vector<int64_t>& expected_shape) const override {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) return not_found("checkpoint '{}' has no tensor '{}'", dir_, name);
    if (!expected_shape.empty() && it->second.shape != expected_shape) {
      return invalid_argument("checkpoint '{}': tensor '{}' has shape [{}], expected [{}]", dir_, name,
                              fmt::join(it->second.shape, ", "), fmt::join(expected_shape, ", "));
    }
    return it->second;
  }

  // Maps `file` (relative to the folder) and adds its tensors. When `only`
  // is given, every name in it must be in the file (the index's promise).
  Status add_file(const std::string& file, const std::set<std::string>* only) {
    BATON_ASSIGN_OR_RETURN(auto st, SafetensorsFile::open((fs::path(dir_) / file).string()));
    if (only != nullptr) {
      for (const auto& name : *only) {
        if (st->tensors().count(name) == 0) {
          return data_loss("model.safetensors.index.json maps tensor '{}' to '{}', which does not hold it", name,
                           st->path());
        }
      }
    }
    for (const auto& [name, view] : st->tensors()) {
      if (only != nullptr && only->count(name) == 0) continue;
      if (!tensors_.emplace(name, view).second) {
        return data_loss("tensor '{}' appears in more than one file of '{}' (again in '{}')", name, dir_, file);
      }
    }
    files_.push_back(std::move(st));
    return Status::ok();
  }

  // After every file is added: FP8 weights dequantised (model/fp8_checkpoint.h).
  Status dequantize_fp8(bool dequantize) {
    return dequantize_fp8_checkpoint(config_, dir_, tensors_, dequantized_, dequantize);
  }

 private:
  std::string dir_;
  ModelConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, TensorView> tensors_;
  std::vector<std::vector<std::byte>> dequantized_;  // what FP8 weights' views point to
};

// A shard name from the index must stay inside the checkpoint folder.
Status check_shard_name(const std::string& file) {
  if (file.empty() || file.front() == '/' || file.find("..") != std::string::npos) {
    return invalid_argument("model.safetensors.index.json names a bad shard file '{}'", file);
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Checkpoint>> Checkpoint::open(const std::string& dir, const CheckpointOpenOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return not_found("checkpoint folder '{}' does not exist", dir);
  const fs::path config_path = fs::path(dir) / "config.json";
  if (!fs::exists(config_path, ec)) return not_found("checkpoint folder '{}' has no config.json", dir);
  BATON_ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::from_file(config_path.string()));
  // Like vLLM: generation_config.json's eos ids also end generation (Qwen3's
  // names <|endoftext|> beside config.json's <|im_end|>).
  const fs::path gen_path = fs::path(dir) / "generation_config.json";
  if (fs::exists(gen_path, ec)) {
    auto gen = read_json_file(gen_path.string());
    if (!gen.is_ok()) return invalid_argument("{}", gen.status().message());
    const Json* eos = gen->is_object() && gen->contains("eos_token_id") ? &(*gen)["eos_token_id"] : nullptr;
    if (eos && !eos->is_null()) {
      std::vector<Json> ids = eos->is_array() ? eos->get<std::vector<Json>>() : std::vector<Json>{*eos};
      for (const Json& id : ids) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0) {
          return invalid_argument("'{}': eos_token_id must be a non-negative integer or a list of them",
                                  gen_path.string());
        }
        int v = id.get<int>();
        if (std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), v) == config.eos_token_ids.end()) {
          config.eos_token_ids.push_back(v);
        }
      }
    }
  }
  auto ckpt = std::make_unique<SafetensorsCheckpoint>(dir, std::move(config));

  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single, ec)) {
    BATON_RETURN_IF_ERROR(ckpt->add_file("model.safetensors", nullptr));
  } else if (fs::exists(index_path, ec)) {
    auto index = read_json_file(index_path.string());
    if (!index.is_ok()) return data_loss("{}", index.status().message());
    auto wm = index->is_object() ? index->find("weight_map") : index->end();
    if (!index->is_object() || wm == index->end() || !wm->is_object()) {
      return data_loss("'{}' has no 'weight_map' object", index_path.string());
    }
    std::map<std::string, std::set<std::string>> by_file;
    for (const auto& [name, file] : wm->items()) {
      if (!file.is_string())
        return data_loss("'{}': weight_map entry '{}' is not a file name", index_path.string(), name);
      BATON_RETURN_IF_ERROR(check_shard_name(file.get<std::string>()));
      by_file[file.get<std::string>()].insert(name);
    }
    if (by_file.empty()) return data_loss("'{}' has an empty weight_map", index_path.string());
    for (const auto& [file, names] : by_file) BATON_RETURN_IF_ERROR(ckpt->add_file(file, &names));
  } else {
    return not_found("checkpoint folder '{}' has neither model.safetensors nor model.safetensors.index.json", dir);
  }
  BATON_RETURN_IF_ERROR(ckpt->dequantize_fp8(options.dequantize_fp8));
  return std::unique_ptr<Checkpoint>(std::move(ckpt));
}

}  // namespace baton

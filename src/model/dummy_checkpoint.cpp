#include "model/dummy_checkpoint.h"

#include <filesystem>
#include <map>
#include <mutex>

#include <fmt/ranges.h>

#include "common/thread_pool.h"
#include "model/default_model.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model/weight_names.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

constexpr double kInitializerRange = 0.02;  // what init-model writes

class DummyCheckpoint final : public Checkpoint {
 public:
  DummyCheckpoint(ModelConfig config, std::string dir, uint64_t seed)
      : config_(std::move(config)), dir_(std::move(dir)), seed_(seed) {
    for (auto& w : expected_weights(config_)) specs_.emplace(w.name, std::move(w));
  }

  const ModelConfig& config() const override { return config_; }
  const std::string& dir() const override { return dir_; }
  bool has(const std::string& name) const override { return specs_.count(name) > 0; }
  uint64_t seed() const { return seed_; }

  std::vector<std::string> tensor_names() const override {
    std::vector<std::string> names;
    for (const auto& [name, spec] : specs_) names.push_back(name);
    return names;
  }

  Result<TensorView> tensor(const std::string& name, const std::vector<int64_t>& expected_shape) const override {
    auto it = specs_.find(name);
    if (it == specs_.end()) return not_found("dummy weights of {}: no tensor '{}'", arch_name(config_.arch), name);
    const WeightSpec& spec = it->second;
    if (!expected_shape.empty() && spec.shape != expected_shape) {
      return invalid_argument("dummy weights: tensor '{}' has shape [{}], expected [{}]", name,
                              fmt::join(spec.shape, ", "), fmt::join(expected_shape, ", "));
    }
    TensorView view;
    view.name = name;
    view.dtype = config_.torch_dtype;
    view.shape = spec.shape;
    view.data = generated(spec).data();
    return view;
  }

 private:
  // The bytes of `spec`, made on first use. The map's nodes do not move, so
  // earlier views stay valid while more tensors are made.
  const std::vector<std::byte>& generated(const WeightSpec& spec) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, fresh] = data_.try_emplace(spec.name);
    if (fresh) {
      it->second.resize(static_cast<size_t>(spec.num_elements()) * dtype_size(config_.torch_dtype));
      if (spec.init == WeightInit::kOnes) {
        fill_ones(config_.torch_dtype, it->second);
      } else {
        fill_random_normal(seed_, spec.name, kInitializerRange, config_.torch_dtype, it->second, pool_);
      }
    }
    return it->second;
  }

  ModelConfig config_;
  std::string dir_;
  uint64_t seed_;
  std::map<std::string, WeightSpec> specs_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::vector<std::byte>> data_;
  mutable ThreadPool pool_{0};
};

}  // namespace

std::unique_ptr<Checkpoint> make_dummy_checkpoint(ModelConfig config, std::string dir, uint64_t seed) {
  config.quantization.reset();
  if (config.torch_dtype == DType::kF8E4M3) config.torch_dtype = DType::kBF16;
  return std::make_unique<DummyCheckpoint>(std::move(config), std::move(dir), seed);
}

std::optional<uint64_t> dummy_checkpoint_seed(const Checkpoint& checkpoint) {
  const auto* dummy = dynamic_cast<const DummyCheckpoint*>(&checkpoint);
  if (dummy == nullptr) return std::nullopt;
  return dummy->seed();
}

Result<DummyModelSource> resolve_dummy_model(const std::string& model_arg) {
  std::error_code ec;
  DummyModelSource source;
  if (!model_arg.empty() && !fs::exists(model_arg, ec)) {
    auto preset = find_model_preset(model_arg);
    if (!preset.is_ok()) {
      return not_found("--load-format dummy: '{}' is neither a model folder nor a preset ({})", model_arg,
                       preset.status().message());
    }
    source.config = preset->config;
    source.name = preset->name;
    auto tokenizer = find_default_tokenizer_dir(preset->config.arch);
    if (tokenizer.is_ok()) source.dir = *tokenizer;
    return source;
  }
  BATON_ASSIGN_OR_RETURN(source.dir, resolve_model_dir(model_arg));
  BATON_ASSIGN_OR_RETURN(source.config, ModelConfig::from_file((fs::path(source.dir) / "config.json").string()));
  source.name = source.dir;
  return source;
}

}  // namespace baton

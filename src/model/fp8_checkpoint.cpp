#include "model/fp8_checkpoint.h"

#include <cstring>
#include <filesystem>

#include <fmt/ranges.h>

#include "common/json.h"
#include "common/thread_pool.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_float_dtype(DType d) { return d == DType::kF32 || d == DType::kBF16 || d == DType::kF16; }

// One F8 weight to dequantise: the weight, its scale, where the result goes.
struct Fp8Job {
  TensorView* weight;
  const TensorView* scale;
  std::vector<std::byte>* out;
};

// Checks the F8 weight `w` and its scale; returns the scale's view.
Result<const TensorView*> check_fp8_weight(const Fp8Quantization& q, const std::string& dir, const TensorView& w,
                                           const std::map<std::string, TensorView>& tensors) {
  auto bad = [&](const std::string& why) {
    return invalid_argument("FP8 checkpoint '{}': tensor '{}' {}", dir, w.name, why);
  };
  if (w.shape.size() != 2)
    return bad(fmt::format("is F8_E4M3 with shape [{}]; only 2-D weights can be", fmt::join(w.shape, ", ")));
  if (q.is_not_converted(w.name)) {
    return bad(fmt::format("is F8_E4M3, but quantization_config lists its module as not converted ([{}])",
                           fmt::join(q.modules_not_converted, ", ")));
  }
  const std::string scale_name = q.scale_name(w.name);
  auto it = tensors.find(scale_name);
  if (it == tensors.end()) {
    return bad(fmt::format("is F8_E4M3 but the checkpoint has no scale tensor '{}' ({} scales)", scale_name,
                           q.scheme == Fp8Scheme::kBlock ? "block" : "per-tensor"));
  }
  const TensorView& s = it->second;
  if (!is_float_dtype(s.dtype))
    return bad(fmt::format("has a scale '{}' of dtype {}", scale_name, dtype_name(s.dtype)));
  const std::vector<int64_t> want = q.scale_shape(w.shape[0], w.shape[1]);
  const bool scalar_ok = q.scheme == Fp8Scheme::kTensor && s.num_elements() == 1 && s.shape.size() <= 1;
  if (s.shape != want && !scalar_ok) {
    return bad(fmt::format("of shape [{}] needs a scale '{}' of shape [{}], found [{}]", fmt::join(w.shape, ", "),
                           scale_name, fmt::join(want, ", "), fmt::join(s.shape, ", ")));
  }
  return &it->second;
}

void dequantize_job(const Fp8Quantization& q, DType out_dtype, const Fp8Job& job) {
  const int64_t rows = job.weight->shape[0], cols = job.weight->shape[1];
  const std::vector<float> scales = job.scale->to_float();
  std::vector<float> values(static_cast<size_t>(rows * cols));
  dequantize_fp8(q, static_cast<const uint8_t*>(job.weight->data), scales.data(), rows, cols, values.data());
  job.out->resize(values.size() * dtype_size(out_dtype));
  for (size_t i = 0; i < values.size(); ++i)
    store_float(out_dtype, job.out->data(), static_cast<int64_t>(i), values[i]);
}

}  // namespace

Status dequantize_fp8_checkpoint(const ModelConfig& config, const std::string& dir,
                                 std::map<std::string, TensorView>& tensors,
                                 std::vector<std::vector<std::byte>>& storage, bool dequantize) {
  if (!config.quantization) {
    for (const auto& [name, view] : tensors) {
      if (view.dtype == DType::kF8E4M3) {
        return invalid_argument(
            "checkpoint '{}': tensor '{}' is F8_E4M3 but config.json has no quantization_config (quant_method fp8)",
            dir, name);
      }
    }
    return Status::ok();
  }
  const Fp8Quantization& q = *config.quantization;
  std::vector<Fp8Job> jobs;
  std::map<std::string, bool> scale_used;  // scale name -> has its F8 weight
  for (const auto& [name, view] : tensors) {
    if (ends_with(name, ".weight_scale_inv") || ends_with(name, ".weight_scale")) scale_used[name] = false;
  }
  for (auto& [name, view] : tensors) {
    if (view.dtype != DType::kF8E4M3) continue;
    BATON_ASSIGN_OR_RETURN(const TensorView* scale, check_fp8_weight(q, dir, view, tensors));
    scale_used[scale->name] = true;
    jobs.push_back({&view, scale, nullptr});
  }
  for (const auto& [name, used] : scale_used) {
    if (!used) {
      return invalid_argument("FP8 checkpoint '{}': scale tensor '{}' has no F8_E4M3 weight beside it", dir, name);
    }
  }
  if (!dequantize) return Status::ok();
  storage.resize(storage.size() + jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) jobs[i].out = &storage[storage.size() - jobs.size() + i];
  const DType out_dtype = config.torch_dtype;
  ThreadPool pool(0);
  pool.parallel_for(static_cast<int64_t>(jobs.size()), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) dequantize_job(q, out_dtype, jobs[static_cast<size_t>(i)]);
  });
  for (const Fp8Job& job : jobs) {
    job.weight->dtype = out_dtype;
    job.weight->data = job.out->data();
  }
  for (auto it = tensors.begin(); it != tensors.end();) {
    const bool drop = scale_used.count(it->first) > 0 || ends_with(it->first, ".input_scale");
    it = drop ? tensors.erase(it) : std::next(it);
  }
  return Status::ok();
}

std::vector<TensorSpec> fp8_tensor_specs(const std::vector<TensorSpec>& tensors, const Fp8Quantization& quant,
                                         std::vector<size_t>* weight_of) {
  std::vector<TensorSpec> specs;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSpec& t = tensors[i];
    if (is_fp8_quantizable(t.name, t.shape) && !quant.is_not_converted(t.name)) {
      specs.push_back({t.name, DType::kF8E4M3, t.shape});
      specs.push_back({quant.scale_name(t.name), DType::kF32, quant.scale_shape(t.shape[0], t.shape[1])});
      if (weight_of) weight_of->insert(weight_of->end(), {i, i});
    } else {
      specs.push_back(t);
      if (weight_of) weight_of->push_back(i);
    }
  }
  return specs;
}

Status write_fp8_weights(const std::string& dir, const std::vector<TensorSpec>& tensors, const Fp8Quantization& quant,
                         const FloatSourceFn& source, uint64_t max_shard_bytes) {
  std::vector<size_t> weight_of;
  const std::vector<TensorSpec> specs = fp8_tensor_specs(tensors, quant, &weight_of);
  std::vector<float> values;
  std::vector<float> scales;  // of the F8 weight just written; its scale tensor comes next
  return write_checkpoint_weights(
      dir, specs,
      [&](size_t k, std::span<std::byte> out) -> Status {
        const TensorSpec& spec = specs[k];
        const TensorSpec& from = tensors[weight_of[k]];
        if (spec.name != from.name) {  // the scale of the previous tensor
          std::memcpy(out.data(), scales.data(), out.size());
          return Status::ok();
        }
        values.resize(static_cast<size_t>(from.num_elements()));
        BATON_RETURN_IF_ERROR(source(weight_of[k], std::span<float>(values)));
        if (spec.dtype == DType::kF8E4M3) {
          const std::vector<int64_t> scale_shape = quant.scale_shape(spec.shape[0], spec.shape[1]);
          scales.assign(static_cast<size_t>(TensorSpec{"", DType::kF32, scale_shape}.num_elements()), 0.0f);
          quantize_fp8(quant, values.data(), spec.shape[0], spec.shape[1], reinterpret_cast<uint8_t*>(out.data()),
                       scales.data());
        } else {
          for (size_t i = 0; i < values.size(); ++i)
            store_float(spec.dtype, out.data(), static_cast<int64_t>(i), values[i]);
        }
        return Status::ok();
      },
      max_shard_bytes);
}

Result<Fp8CheckpointStats> write_fp8_checkpoint(const Checkpoint& source, const Fp8Quantization& quant,
                                                const std::string& out_dir, uint64_t max_shard_bytes) {
  if (source.config().quantization) {
    return invalid_argument("checkpoint '{}' is already FP8 (it has a quantization_config)", source.dir());
  }
  std::error_code ec;
  if (fs::equivalent(source.dir(), out_dir, ec)) {
    return invalid_argument("the FP8 checkpoint must go to another folder than its source '{}'", source.dir());
  }
  std::vector<TensorSpec> tensors;
  std::vector<TensorView> views;
  for (const std::string& name : source.tensor_names()) {
    BATON_ASSIGN_OR_RETURN(TensorView v, source.tensor(name));
    tensors.push_back({name, v.dtype, v.shape});
    views.push_back(v);
  }
  fs::create_directories(out_dir, ec);
  if (ec) return unavailable("cannot create '{}': {}", out_dir, ec.message());
  const fs::path config_out = fs::path(out_dir) / "config.json";
  fs::remove(config_out, ec);  // written last, when the weights are complete
  for (const auto& entry : fs::directory_iterator(source.dir(), ec)) {
    const std::string file = entry.path().filename().string();
    if (!entry.is_regular_file() || ends_with(file, ".safetensors") || file == "model.safetensors.index.json" ||
        file == "config.json") {
      continue;
    }
    fs::copy_file(entry.path(), fs::path(out_dir) / file, fs::copy_options::overwrite_existing, ec);
    if (ec) return unavailable("cannot copy '{}' into '{}': {}", entry.path().string(), out_dir, ec.message());
  }
  BATON_RETURN_IF_ERROR(write_fp8_weights(
      out_dir, tensors, quant,
      [&](size_t i, std::span<float> out) {
        views[i].to_float(out.data());
        return Status::ok();
      },
      max_shard_bytes));
  // The source's own config.json, so fields baton does not model survive.
  BATON_ASSIGN_OR_RETURN(Json config, read_json_file((fs::path(source.dir()) / "config.json").string()));
  config["quantization_config"] = quant.to_json();
  BATON_RETURN_IF_ERROR(write_file(config_out.string(), config.dump(2) + "\n"));

  Fp8CheckpointStats stats;
  for (const TensorSpec& spec : fp8_tensor_specs(tensors, quant, nullptr)) {
    stats.num_bytes += spec.num_bytes();
    if (spec.dtype == DType::kF8E4M3) ++stats.num_quantized;
  }
  stats.num_kept = static_cast<int>(tensors.size()) - stats.num_quantized;
  return stats;
}

}  // namespace baton

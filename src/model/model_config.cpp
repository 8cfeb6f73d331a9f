#include "model/model_config.h"

#include <algorithm>

#include <fmt/ranges.h>

namespace baton {
namespace {

constexpr const char* kSupportedTypes = "llama, qwen2, qwen3, qwen3_moe";

Result<Arch> parse_arch(const std::string& model_type) {
  if (model_type == "llama") return Arch::kLlama;
  if (model_type == "qwen2") return Arch::kQwen2;
  if (model_type == "qwen3") return Arch::kQwen3;
  if (model_type == "qwen3_moe") return Arch::kQwen3Moe;
  return unimplemented("unknown model_type '{}' (supported: {})", model_type, kSupportedTypes);
}

Result<DType> parse_torch_dtype(const std::string& s) {
  if (s == "float32" || s == "float") return DType::kF32;
  if (s == "float16" || s == "half") return DType::kF16;
  if (s == "bfloat16") return DType::kBF16;
  return unimplemented("unsupported torch_dtype '{}' (supported: float32, float16, bfloat16)", s);
}

const char* torch_dtype_name(DType d) {
  switch (d) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
  }
  return "?";
}

// An integer field: absent/null -> fallback; a float with a fractional part,
// a string or an out-of-int-range number is an error naming the field.
Result<int> get_int(const Json& j, const char* key, int fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_number_integer()) {
    int64_t v = it->get<int64_t>();
    if (v < INT32_MIN || v > INT32_MAX) return invalid_argument("config field '{}' = {} is out of range", key, v);
    return static_cast<int>(v);
  }
  if (it->is_number_float()) {
    double v = it->get<double>();
    if (v == static_cast<double>(static_cast<int64_t>(v)) && v >= INT32_MIN && v <= INT32_MAX) return static_cast<int>(v);
    return invalid_argument("config field '{}' = {} is not an integer", key, v);
  }
  return invalid_argument("config field '{}' must be an integer, got {}", key, it->type_name());
}

Result<double> get_double(const Json& j, const char* key, double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) return invalid_argument("config field '{}' must be a number, got {}", key, it->type_name());
  return it->get<double>();
}

Result<bool> get_bool(const Json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return invalid_argument("config field '{}' must be a boolean, got {}", key, it->type_name());
  return it->get<bool>();
}

Result<std::vector<int>> get_int_list(const Json& j, const char* key) {
  std::vector<int> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (it->is_number_integer()) {
    out.push_back(it->get<int>());
    return out;
  }
  if (!it->is_array()) return invalid_argument("config field '{}' must be an integer or a list of integers", key);
  for (const auto& v : *it) {
    if (!v.is_number_integer()) return invalid_argument("config field '{}' must hold integers only", key);
    out.push_back(v.get<int>());
  }
  return out;
}

// rope_scaling, or (transformers v5) rope_parameters, which holds the same
// fields plus rope_theta.
Result<std::optional<RopeScaling>> parse_rope_scaling(const Json& j) {
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) it = j.find("rope_parameters");
  if (it == j.end() || it->is_null()) return std::optional<RopeScaling>();
  if (!it->is_object()) return invalid_argument("config field 'rope_scaling' must be an object");
  const Json& rs = *it;
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    auto t = rs.find(key);
    if (t != rs.end() && !t->is_null()) {
      if (!t->is_string()) return invalid_argument("rope_scaling.{} must be a string", key);
      type = t->get<std::string>();
      break;
    }
  }
  if (type.empty()) return invalid_argument("rope_scaling has no 'rope_type' (or 'type')");
  if (type == "default") return std::optional<RopeScaling>();  // plain RoPE
  if (type != "llama3") {
    return unimplemented("rope_scaling type '{}' is not supported (supported: llama3, default)", type);
  }
  RopeScaling s;
  s.rope_type = type;
  BATON_ASSIGN_OR_RETURN(s.factor, get_double(rs, "factor", 0.0));
  BATON_ASSIGN_OR_RETURN(s.low_freq_factor, get_double(rs, "low_freq_factor", 1.0));
  BATON_ASSIGN_OR_RETURN(s.high_freq_factor, get_double(rs, "high_freq_factor", 4.0));
  BATON_ASSIGN_OR_RETURN(s.original_max_position_embeddings,
                         get_int(rs, "original_max_position_embeddings", 8192));
  if (!(s.factor > 0)) return invalid_argument("rope_scaling.factor must be > 0 (got {})", s.factor);
  if (!(s.low_freq_factor > 0)) return invalid_argument("rope_scaling.low_freq_factor must be > 0");
  if (!(s.high_freq_factor > s.low_freq_factor)) {
    return invalid_argument("rope_scaling.high_freq_factor ({}) must be greater than low_freq_factor ({})",
                            s.high_freq_factor, s.low_freq_factor);
  }
  if (s.original_max_position_embeddings <= 0) {
    return invalid_argument("rope_scaling.original_max_position_embeddings must be > 0");
  }
  return std::optional<RopeScaling>(s);
}

Status require_positive(int value, const char* field) {
  if (value <= 0) return invalid_argument("config field '{}' must be > 0 (got {})", field, value);
  return Status::ok();
}

Status validate(const ModelConfig& c, bool explicit_head_dim) {
  BATON_RETURN_IF_ERROR(require_positive(c.vocab_size, "vocab_size"));
  BATON_RETURN_IF_ERROR(require_positive(c.hidden_size, "hidden_size"));
  BATON_RETURN_IF_ERROR(require_positive(c.intermediate_size, "intermediate_size"));
  BATON_RETURN_IF_ERROR(require_positive(c.num_layers, "num_hidden_layers"));
  BATON_RETURN_IF_ERROR(require_positive(c.num_heads, "num_attention_heads"));
  BATON_RETURN_IF_ERROR(require_positive(c.num_kv_heads, "num_key_value_heads"));
  BATON_RETURN_IF_ERROR(require_positive(c.max_position_embeddings, "max_position_embeddings"));
  if (c.num_heads % c.num_kv_heads != 0) {
    return invalid_argument("num_attention_heads ({}) must be divisible by num_key_value_heads ({})",
                            c.num_heads, c.num_kv_heads);
  }
  if (!explicit_head_dim && c.hidden_size % c.num_heads != 0) {
    return invalid_argument("hidden_size ({}) must be divisible by num_attention_heads ({}) when head_dim is absent",
                            c.hidden_size, c.num_heads);
  }
  BATON_RETURN_IF_ERROR(require_positive(c.head_dim, "head_dim"));
  if (c.head_dim % 2 != 0) return invalid_argument("head_dim ({}) must be even for RoPE", c.head_dim);
  if (!(c.rms_norm_eps > 0)) return invalid_argument("config field 'rms_norm_eps' must be > 0");
  if (!(c.rope_theta > 0)) return invalid_argument("config field 'rope_theta' must be > 0");
  for (int id : c.eos_token_ids) {
    if (id < 0) return invalid_argument("config field 'eos_token_id' holds a negative id ({})", id);
  }
  if (c.num_experts < 0) return invalid_argument("config field 'num_experts' must be >= 0");
  if (c.num_experts > 0) {
    if (c.num_experts_per_tok <= 0 || c.num_experts_per_tok > c.num_experts) {
      return invalid_argument("num_experts_per_tok ({}) must be in [1, num_experts={}]", c.num_experts_per_tok,
                              c.num_experts);
    }
    BATON_RETURN_IF_ERROR(require_positive(c.moe_intermediate_size, "moe_intermediate_size"));
    BATON_RETURN_IF_ERROR(require_positive(c.decoder_sparse_step, "decoder_sparse_step"));
    for (int l : c.mlp_only_layers) {
      if (l < 0 || l >= c.num_layers) {
        return invalid_argument("mlp_only_layers holds layer {} outside [0, num_hidden_layers={})", l, c.num_layers);
      }
    }
  }
  return Status::ok();
}

}  // namespace

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::kLlama: return "llama";
    case Arch::kQwen2: return "qwen2";
    case Arch::kQwen3: return "qwen3";
    case Arch::kQwen3Moe: return "qwen3_moe";
  }
  return "?";
}

bool ModelConfig::is_moe_layer(int layer) const {
  if (num_experts <= 0 || decoder_sparse_step <= 0) return false;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end()) return false;
  return (layer + 1) % decoder_sparse_step == 0;
}

Result<ModelConfig> ModelConfig::from_json(const Json& j) {
  if (!j.is_object()) return invalid_argument("config.json must hold a JSON object");
  auto mt = j.find("model_type");
  if (mt == j.end() || !mt->is_string()) {
    return invalid_argument("config.json has no string 'model_type' (supported: {})", kSupportedTypes);
  }
  ModelConfig c;
  BATON_ASSIGN_OR_RETURN(c.arch, parse_arch(mt->get<std::string>()));
  const bool is_qwen = c.arch != Arch::kLlama;

  BATON_ASSIGN_OR_RETURN(c.vocab_size, get_int(j, "vocab_size", 0));
  BATON_ASSIGN_OR_RETURN(c.hidden_size, get_int(j, "hidden_size", 0));
  BATON_ASSIGN_OR_RETURN(c.intermediate_size, get_int(j, "intermediate_size", 0));
  BATON_ASSIGN_OR_RETURN(c.num_layers, get_int(j, "num_hidden_layers", 0));
  BATON_ASSIGN_OR_RETURN(c.num_heads, get_int(j, "num_attention_heads", 0));
  BATON_ASSIGN_OR_RETURN(c.num_kv_heads, get_int(j, "num_key_value_heads", c.num_heads));
  BATON_ASSIGN_OR_RETURN(c.max_position_embeddings,
                         get_int(j, "max_position_embeddings", is_qwen ? 32768 : 2048));
  BATON_ASSIGN_OR_RETURN(c.rms_norm_eps, get_double(j, "rms_norm_eps", 1e-6));
  double rope_theta_fallback = 10000.0;
  if (auto rp = j.find("rope_parameters"); rp != j.end() && rp->is_object()) {
    BATON_ASSIGN_OR_RETURN(rope_theta_fallback, get_double(*rp, "rope_theta", rope_theta_fallback));
  }
  BATON_ASSIGN_OR_RETURN(c.rope_theta, get_double(j, "rope_theta", rope_theta_fallback));
  BATON_ASSIGN_OR_RETURN(c.rope_scaling, parse_rope_scaling(j));
  BATON_ASSIGN_OR_RETURN(c.tie_word_embeddings, get_bool(j, "tie_word_embeddings", false));

  const bool explicit_head_dim = j.contains("head_dim") && !j["head_dim"].is_null();
  BATON_ASSIGN_OR_RETURN(int head_dim, get_int(j, "head_dim", 0));
  if (explicit_head_dim) {
    c.head_dim = head_dim;
  } else if (c.num_heads > 0) {
    c.head_dim = c.hidden_size / c.num_heads;
  }

  BATON_ASSIGN_OR_RETURN(bool attention_bias, get_bool(j, "attention_bias", false));
  c.qkv_bias = c.arch == Arch::kQwen2 ? true : attention_bias;
  c.qk_norm = c.arch == Arch::kQwen3 || c.arch == Arch::kQwen3Moe;

  // Features of these model types that baton does not implement: refuse them
  // rather than compute something else.
  auto act = j.find("hidden_act");
  if (act != j.end() && !act->is_null() && (!act->is_string() || act->get<std::string>() != "silu")) {
    return unimplemented("hidden_act {} is not supported (only silu)", act->dump());
  }
  BATON_ASSIGN_OR_RETURN(bool mlp_bias, get_bool(j, "mlp_bias", false));
  if (mlp_bias) return unimplemented("mlp_bias=true is not supported");
  BATON_ASSIGN_OR_RETURN(bool sliding, get_bool(j, "use_sliding_window", false));
  if (sliding) return unimplemented("use_sliding_window=true is not supported");

  // torch_dtype (older transformers) or dtype (newer).
  for (const char* key : {"torch_dtype", "dtype"}) {
    auto it = j.find(key);
    if (it != j.end() && !it->is_null()) {
      if (!it->is_string()) return invalid_argument("config field '{}' must be a string", key);
      BATON_ASSIGN_OR_RETURN(c.torch_dtype, parse_torch_dtype(it->get<std::string>()));
      break;
    }
  }
  BATON_ASSIGN_OR_RETURN(c.bos_token_id, get_int(j, "bos_token_id", -1));
  BATON_ASSIGN_OR_RETURN(c.eos_token_ids, get_int_list(j, "eos_token_id"));

  if (c.arch == Arch::kQwen3Moe) {  // HF Qwen3MoeConfig defaults
    BATON_ASSIGN_OR_RETURN(c.num_experts, get_int(j, "num_experts", 128));
    BATON_ASSIGN_OR_RETURN(c.num_experts_per_tok, get_int(j, "num_experts_per_tok", 8));
    BATON_ASSIGN_OR_RETURN(c.moe_intermediate_size, get_int(j, "moe_intermediate_size", 768));
    BATON_ASSIGN_OR_RETURN(c.norm_topk_prob, get_bool(j, "norm_topk_prob", false));
    BATON_ASSIGN_OR_RETURN(c.decoder_sparse_step, get_int(j, "decoder_sparse_step", 1));
    BATON_ASSIGN_OR_RETURN(c.mlp_only_layers, get_int_list(j, "mlp_only_layers"));
  }
  BATON_RETURN_IF_ERROR(validate(c, explicit_head_dim));
  return c;
}

Result<ModelConfig> ModelConfig::from_file(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(Json j, read_json_file(path));
  auto cfg = from_json(j);
  if (!cfg.is_ok()) return cfg.status().with_context(path);
  return cfg;
}

Json ModelConfig::to_json() const {
  static constexpr const char* kArchitectures[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                                                   "Qwen3MoeForCausalLM"};
  Json j;
  j["architectures"] = Json::array({kArchitectures[static_cast<int>(arch)]});
  j["model_type"] = arch_name(arch);
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_layers;
  j["num_attention_heads"] = num_heads;
  j["num_key_value_heads"] = num_kv_heads;
  j["head_dim"] = head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  if (rope_scaling) {
    j["rope_scaling"] = {{"rope_type", rope_scaling->rope_type},
                         {"factor", rope_scaling->factor},
                         {"low_freq_factor", rope_scaling->low_freq_factor},
                         {"high_freq_factor", rope_scaling->high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling->original_max_position_embeddings}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["tie_word_embeddings"] = tie_word_embeddings;
  if (arch != Arch::kQwen2) j["attention_bias"] = qkv_bias;
  if (arch == Arch::kLlama) j["mlp_bias"] = false;
  if (arch != Arch::kLlama) j["use_sliding_window"] = false;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1) {
    j["eos_token_id"] = eos_token_ids[0];
  } else if (!eos_token_ids.empty()) {
    j["eos_token_id"] = eos_token_ids;
  }
  j["torch_dtype"] = torch_dtype_name(torch_dtype);
  if (arch == Arch::kQwen3Moe) {
    j["num_experts"] = num_experts;
    j["num_experts_per_tok"] = num_experts_per_tok;
    j["moe_intermediate_size"] = moe_intermediate_size;
    j["norm_topk_prob"] = norm_topk_prob;
    j["decoder_sparse_step"] = decoder_sparse_step;
    j["mlp_only_layers"] = mlp_only_layers;
    j["output_router_logits"] = false;
  }
  return j;
}

}  // namespace baton

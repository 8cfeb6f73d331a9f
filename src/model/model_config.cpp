#include "model/model_config.h"

#include <algorithm>

#include <fmt/ranges.h>

namespace baton {
namespace {

constexpr const char* kSupportedTypes = "llama, qwen2, qwen3, qwen3_moe, deepseek_v3";

Result<Arch> parse_arch(const std::string& model_type) {
  if (model_type == "llama") return Arch::kLlama;
  if (model_type == "qwen2") return Arch::kQwen2;
  if (model_type == "qwen3") return Arch::kQwen3;
  if (model_type == "qwen3_moe") return Arch::kQwen3Moe;
  if (model_type == "deepseek_v3") return Arch::kDeepseekV3;
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
    case DType::kF8E4M3: return "bfloat16";  // never a torch_dtype: FP8 checkpoints compute in bf16
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
    if (v == static_cast<double>(static_cast<int64_t>(v)) && v >= INT32_MIN && v <= INT32_MAX)
      return static_cast<int>(v);
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

// The yarn fields of rope_scaling (HF's names and defaults); an absent
// original_max_position_embeddings is filled from the model's context later.
Result<std::optional<RopeScaling>> parse_yarn(const Json& rs, RopeScaling s) {
  BATON_ASSIGN_OR_RETURN(s.original_max_position_embeddings, get_int(rs, "original_max_position_embeddings", 0));
  BATON_ASSIGN_OR_RETURN(s.beta_fast, get_double(rs, "beta_fast", 32.0));
  BATON_ASSIGN_OR_RETURN(s.beta_slow, get_double(rs, "beta_slow", 1.0));
  BATON_ASSIGN_OR_RETURN(s.mscale, get_double(rs, "mscale", 1.0));
  BATON_ASSIGN_OR_RETURN(s.mscale_all_dim, get_double(rs, "mscale_all_dim", 0.0));
  BATON_ASSIGN_OR_RETURN(s.attention_factor, get_double(rs, "attention_factor", 0.0));
  BATON_ASSIGN_OR_RETURN(s.truncate, get_bool(rs, "truncate", true));
  if (!(s.factor >= 1.0)) return invalid_argument("rope_scaling.factor must be >= 1 for yarn (got {})", s.factor);
  if (!(s.beta_fast > s.beta_slow) || !(s.beta_slow > 0))
    return invalid_argument("rope_scaling.beta_fast ({}) must be greater than beta_slow ({}) > 0", s.beta_fast,
                            s.beta_slow);
  if (s.original_max_position_embeddings < 0)
    return invalid_argument("rope_scaling.original_max_position_embeddings must be > 0");
  if (s.attention_factor < 0) return invalid_argument("rope_scaling.attention_factor must be > 0");
  return std::optional<RopeScaling>(s);
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
  if (type != "llama3" && type != "yarn") {
    return unimplemented("rope_scaling type '{}' is not supported (supported: llama3, yarn, default)", type);
  }
  RopeScaling s;
  s.rope_type = type;
  BATON_ASSIGN_OR_RETURN(s.factor, get_double(rs, "factor", 0.0));
  if (type == "yarn") return parse_yarn(rs, std::move(s));
  BATON_ASSIGN_OR_RETURN(s.low_freq_factor, get_double(rs, "low_freq_factor", 1.0));
  BATON_ASSIGN_OR_RETURN(s.high_freq_factor, get_double(rs, "high_freq_factor", 4.0));
  BATON_ASSIGN_OR_RETURN(s.original_max_position_embeddings, get_int(rs, "original_max_position_embeddings", 8192));
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
    return invalid_argument("num_attention_heads ({}) must be divisible by num_key_value_heads ({})", c.num_heads,
                            c.num_kv_heads);
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

// A string field that must hold one value baton implements (absent: `fallback`).
Status require_string(const Json& j, const char* key, const char* fallback, const char* supported) {
  auto it = j.find(key);
  std::string v = fallback;
  if (it != j.end() && !it->is_null()) {
    if (!it->is_string()) return invalid_argument("config field '{}' must be a string, got {}", key, it->type_name());
    v = it->get<std::string>();
  }
  if (v != supported) return unimplemented("config field '{}' = '{}' is not supported (only '{}')", key, v, supported);
  return Status::ok();
}

// deepseek_v3's MLA and DeepSeekMoE fields, with HF DeepseekV3Config's
// defaults; what baton does not implement is refused naming the field.
Status parse_deepseek(const Json& j, ModelConfig& c) {
  MlaConfig& m = c.mla;
  auto q_lora = j.find("q_lora_rank");
  if (q_lora == j.end()) {
    m.q_lora_rank = 1536;
  } else if (q_lora->is_null()) {
    m.q_lora_rank = 0;
  } else {
    BATON_ASSIGN_OR_RETURN(m.q_lora_rank, get_int(j, "q_lora_rank", 0));
    if (m.q_lora_rank <= 0)
      return invalid_argument("config field 'q_lora_rank' must be > 0 or null (got {})", m.q_lora_rank);
  }
  BATON_ASSIGN_OR_RETURN(m.kv_lora_rank, get_int(j, "kv_lora_rank", 512));
  BATON_ASSIGN_OR_RETURN(m.qk_nope_head_dim, get_int(j, "qk_nope_head_dim", 128));
  BATON_ASSIGN_OR_RETURN(m.qk_rope_head_dim, get_int(j, "qk_rope_head_dim", 64));
  BATON_ASSIGN_OR_RETURN(m.v_head_dim, get_int(j, "v_head_dim", 128));
  BATON_ASSIGN_OR_RETURN(m.rope_interleave, get_bool(j, "rope_interleave", true));
  BATON_RETURN_IF_ERROR(require_positive(m.kv_lora_rank, "kv_lora_rank"));
  BATON_RETURN_IF_ERROR(require_positive(m.qk_nope_head_dim, "qk_nope_head_dim"));
  BATON_RETURN_IF_ERROR(require_positive(m.qk_rope_head_dim, "qk_rope_head_dim"));
  BATON_RETURN_IF_ERROR(require_positive(m.v_head_dim, "v_head_dim"));
  if (m.qk_rope_head_dim % 2 != 0)
    return invalid_argument("config field 'qk_rope_head_dim' ({}) must be even for RoPE", m.qk_rope_head_dim);
  c.head_dim = m.qk_rope_head_dim;  // HF: the rotary dimension

  DeepseekMoeConfig& d = c.deepseek_moe;
  BATON_ASSIGN_OR_RETURN(c.num_experts, get_int(j, "n_routed_experts", 256));
  BATON_ASSIGN_OR_RETURN(c.num_experts_per_tok, get_int(j, "num_experts_per_tok", 8));
  BATON_ASSIGN_OR_RETURN(c.moe_intermediate_size, get_int(j, "moe_intermediate_size", 2048));
  BATON_ASSIGN_OR_RETURN(c.norm_topk_prob, get_bool(j, "norm_topk_prob", true));
  BATON_ASSIGN_OR_RETURN(d.n_shared_experts, get_int(j, "n_shared_experts", 1));
  BATON_ASSIGN_OR_RETURN(d.n_group, get_int(j, "n_group", 8));
  BATON_ASSIGN_OR_RETURN(d.topk_group, get_int(j, "topk_group", 4));
  BATON_ASSIGN_OR_RETURN(d.routed_scaling_factor, get_double(j, "routed_scaling_factor", 2.5));
  BATON_ASSIGN_OR_RETURN(d.first_k_dense_replace, get_int(j, "first_k_dense_replace", 3));
  BATON_ASSIGN_OR_RETURN(d.moe_layer_freq, get_int(j, "moe_layer_freq", 1));
  BATON_RETURN_IF_ERROR(require_string(j, "scoring_func", "sigmoid", "sigmoid"));
  BATON_RETURN_IF_ERROR(require_string(j, "topk_method", "noaux_tc", "noaux_tc"));
  if (c.num_experts < 0) return invalid_argument("config field 'n_routed_experts' must be >= 0");
  if (d.n_shared_experts < 0) return invalid_argument("config field 'n_shared_experts' must be >= 0");
  BATON_RETURN_IF_ERROR(require_positive(d.n_group, "n_group"));
  BATON_RETURN_IF_ERROR(require_positive(d.moe_layer_freq, "moe_layer_freq"));
  if (d.topk_group <= 0 || d.topk_group > d.n_group)
    return invalid_argument("config field 'topk_group' ({}) must be in [1, n_group={}]", d.topk_group, d.n_group);
  if (c.num_experts > 0) {
    if (c.num_experts % d.n_group != 0 || c.num_experts / d.n_group < 2)
      return invalid_argument("config field 'n_group' ({}) must divide n_routed_experts ({}) into groups of >= 2",
                              d.n_group, c.num_experts);
    const int selectable = d.topk_group * (c.num_experts / d.n_group);
    if (c.num_experts_per_tok > selectable)
      return invalid_argument("config field 'num_experts_per_tok' ({}) exceeds the {} experts of topk_group={} groups",
                              c.num_experts_per_tok, selectable, d.topk_group);
  }
  if (!(d.routed_scaling_factor > 0))
    return invalid_argument("config field 'routed_scaling_factor' must be > 0 (got {})", d.routed_scaling_factor);
  if (d.first_k_dense_replace < 0)
    return invalid_argument("config field 'first_k_dense_replace' must be >= 0 (got {})", d.first_k_dense_replace);
  BATON_ASSIGN_OR_RETURN(bool attention_bias, get_bool(j, "attention_bias", false));
  if (attention_bias) return unimplemented("config field 'attention_bias' = true is not supported for deepseek_v3");
  return Status::ok();
}

void deepseek_to_json(const ModelConfig& c, Json& j) {
  j.erase("head_dim");
  j["q_lora_rank"] = c.mla.q_lora_rank > 0 ? Json(c.mla.q_lora_rank) : Json(nullptr);
  j["kv_lora_rank"] = c.mla.kv_lora_rank;
  j["qk_nope_head_dim"] = c.mla.qk_nope_head_dim;
  j["qk_rope_head_dim"] = c.mla.qk_rope_head_dim;
  j["v_head_dim"] = c.mla.v_head_dim;
  j["rope_interleave"] = c.mla.rope_interleave;
  j["n_routed_experts"] = c.num_experts;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["moe_intermediate_size"] = c.moe_intermediate_size;
  j["norm_topk_prob"] = c.norm_topk_prob;
  j["n_shared_experts"] = c.deepseek_moe.n_shared_experts;
  j["n_group"] = c.deepseek_moe.n_group;
  j["topk_group"] = c.deepseek_moe.topk_group;
  j["routed_scaling_factor"] = c.deepseek_moe.routed_scaling_factor;
  j["first_k_dense_replace"] = c.deepseek_moe.first_k_dense_replace;
  j["moe_layer_freq"] = c.deepseek_moe.moe_layer_freq;
  j["scoring_func"] = "sigmoid";
  j["topk_method"] = "noaux_tc";
  j.erase("use_sliding_window");
}

}  // namespace

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::kLlama: return "llama";
    case Arch::kQwen2: return "qwen2";
    case Arch::kQwen3: return "qwen3";
    case Arch::kQwen3Moe: return "qwen3_moe";
    case Arch::kDeepseekV3: return "deepseek_v3";
  }
  return "?";
}

bool ModelConfig::is_moe_layer(int layer) const {
  if (arch == Arch::kDeepseekV3) {
    return num_experts > 0 && layer >= deepseek_moe.first_k_dense_replace && deepseek_moe.moe_layer_freq > 0 &&
           layer % deepseek_moe.moe_layer_freq == 0;
  }
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
  BATON_ASSIGN_OR_RETURN(c.max_position_embeddings, get_int(j, "max_position_embeddings", is_qwen ? 32768 : 2048));
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
  if (c.arch == Arch::kDeepseekV3) BATON_RETURN_IF_ERROR(parse_deepseek(j, c));
  BATON_ASSIGN_OR_RETURN(c.quantization, parse_quantization_config(j));
  if (c.rope_scaling && c.rope_scaling->rope_type == "yarn") {
    if (c.arch != Arch::kDeepseekV3)
      return unimplemented("rope_scaling type 'yarn' is supported for deepseek_v3 only (model_type {})",
                           arch_name(c.arch));
    if (c.rope_scaling->original_max_position_embeddings == 0)
      c.rope_scaling->original_max_position_embeddings = c.max_position_embeddings;
  }
  BATON_RETURN_IF_ERROR(validate(c, explicit_head_dim || c.arch == Arch::kDeepseekV3));
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
                                                   "Qwen3MoeForCausalLM", "DeepseekV3ForCausalLM"};
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
  if (rope_scaling && rope_scaling->rope_type == "yarn") {
    const RopeScaling& r = *rope_scaling;
    j["rope_scaling"] = {{"rope_type", "yarn"},
                         {"factor", r.factor},
                         {"beta_fast", r.beta_fast},
                         {"beta_slow", r.beta_slow},
                         {"mscale", r.mscale},
                         {"mscale_all_dim", r.mscale_all_dim},
                         {"original_max_position_embeddings", r.original_max_position_embeddings}};
    if (r.attention_factor > 0) j["rope_scaling"]["attention_factor"] = r.attention_factor;
    if (!r.truncate) j["rope_scaling"]["truncate"] = false;
  } else if (rope_scaling) {
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
  if (arch == Arch::kDeepseekV3) deepseek_to_json(*this, j);
  if (quantization) j["quantization_config"] = quantization->to_json();
  return j;
}

}  // namespace baton

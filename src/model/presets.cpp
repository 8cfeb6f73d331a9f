#include "model/presets.h"

#include <fmt/ranges.h>

namespace baton {
namespace {

ModelConfig llama31_8b() {
  ModelConfig c;  // meta-llama/Llama-3.1-8B(-Instruct) config.json
  c.arch = Arch::kLlama;
  c.vocab_size = 128256;
  c.hidden_size = 4096;
  c.intermediate_size = 14336;
  c.num_layers = 32;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 128;
  c.max_position_embeddings = 131072;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.rope_scaling = RopeScaling{"llama3", 8.0, 1.0, 4.0, 8192};
  c.tie_word_embeddings = false;
  c.torch_dtype = DType::kBF16;
  c.bos_token_id = 128000;
  c.eos_token_ids = {128001, 128008, 128009};
  return c;
}

ModelConfig qwen3_base() {
  ModelConfig c;  // fields shared by the Qwen3 family
  c.arch = Arch::kQwen3;
  c.vocab_size = 151936;
  c.max_position_embeddings = 40960;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1000000.0;
  c.qk_norm = true;
  c.torch_dtype = DType::kBF16;
  c.bos_token_id = 151643;
  c.eos_token_ids = {151645, 151643};  // <|im_end|>, <|endoftext|>
  return c;
}

ModelConfig qwen3_8b() {
  ModelConfig c = qwen3_base();  // Qwen/Qwen3-8B
  c.hidden_size = 4096;
  c.intermediate_size = 12288;
  c.num_layers = 36;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 128;
  return c;
}

ModelConfig qwen3_30b_a3b() {
  ModelConfig c = qwen3_base();  // Qwen/Qwen3-30B-A3B
  c.arch = Arch::kQwen3Moe;
  c.hidden_size = 2048;
  c.intermediate_size = 6144;
  c.num_layers = 48;
  c.num_heads = 32;
  c.num_kv_heads = 4;
  c.head_dim = 128;
  c.num_experts = 128;
  c.num_experts_per_tok = 8;
  c.moe_intermediate_size = 768;
  c.norm_topk_prob = true;
  c.decoder_sparse_step = 1;
  return c;
}

ModelConfig default_model() {
  ModelConfig c = qwen3_base();  // small enough for 2 CPU cores, real Qwen3 vocab
  c.hidden_size = 256;
  c.intermediate_size = 768;
  c.num_layers = 4;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.tie_word_embeddings = true;
  return c;
}

ModelConfig tiny(Arch arch) {
  ModelConfig c;
  c.arch = arch;
  c.vocab_size = 512;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.max_position_embeddings = 4096;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1000000.0;
  c.torch_dtype = DType::kBF16;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  switch (arch) {
    case Arch::kLlama:
      c.rms_norm_eps = 1e-5;
      c.rope_theta = 500000.0;
      c.rope_scaling = RopeScaling{"llama3", 8.0, 1.0, 4.0, 64};
      break;
    case Arch::kQwen2:
      c.qkv_bias = true;
      c.tie_word_embeddings = true;
      break;
    case Arch::kQwen3:
      c.qk_norm = true;
      c.head_dim = 32;  // explicit, != hidden / heads, as Qwen3 does
      break;
    case Arch::kQwen3Moe:
      c.qk_norm = true;
      c.head_dim = 32;
      c.num_layers = 3;
      c.num_experts = 8;
      c.num_experts_per_tok = 2;
      c.moe_intermediate_size = 32;
      c.norm_topk_prob = true;
      c.mlp_only_layers = {1};  // one dense layer between sparse ones
      break;
  }
  return c;
}

std::vector<ModelPreset> make_presets() {
  return {
      {"default", "small Qwen3 (hidden 256, 4 layers, Qwen3 vocab, tied embeddings): interactive on 2 CPU cores",
       default_model()},
      {"llama3.1-8b", "the shape of Llama-3.1-8B", llama31_8b()},
      {"qwen3-8b", "the shape of Qwen3-8B", qwen3_8b()},
      {"qwen3-30b-a3b", "the shape of Qwen3-30B-A3B (128 experts, 8 per token)", qwen3_30b_a3b()},
      {"tiny-llama", "tiny llama (vocab 512) with llama3 rope scaling, for tests", tiny(Arch::kLlama)},
      {"tiny-qwen2", "tiny qwen2 (vocab 512) with q/k/v bias and tied embeddings, for tests", tiny(Arch::kQwen2)},
      {"tiny-qwen3", "tiny qwen3 (vocab 512) with q/k norm, for tests", tiny(Arch::kQwen3)},
      {"tiny-qwen3-moe", "tiny qwen3_moe (vocab 512, 8 experts, a dense layer 1), for tests", tiny(Arch::kQwen3Moe)},
  };
}

}  // namespace

const std::vector<ModelPreset>& model_presets() {
  static const std::vector<ModelPreset> presets = make_presets();  // immutable after first use
  return presets;
}

Result<ModelPreset> find_model_preset(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& p : model_presets()) {
    if (p.name == name) return p;
    names.push_back(p.name);
  }
  return not_found("unknown preset '{}' (known: {})", name, fmt::join(names, ", "));
}

std::string default_tokenizer_package(Arch arch) {
  return arch == Arch::kLlama ? "tokenizer-llama3" : "tokenizer-qwen3";
}

}  // namespace baton

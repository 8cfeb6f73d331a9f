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

ModelConfig llama31_70b() {
  ModelConfig c = llama31_8b();  // meta-llama/Llama-3.1-70B(-Instruct) config.json
  c.hidden_size = 8192;
  c.intermediate_size = 28672;
  c.num_layers = 80;
  c.num_heads = 64;
  c.num_kv_heads = 8;
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

ModelConfig qwen3_235b_a22b() {
  ModelConfig c = qwen3_30b_a3b();  // Qwen/Qwen3-235B-A22B
  c.hidden_size = 4096;
  c.intermediate_size = 12288;
  c.num_layers = 94;
  c.num_heads = 64;
  c.num_kv_heads = 4;
  c.head_dim = 128;
  c.num_experts = 128;
  c.num_experts_per_tok = 8;
  c.moe_intermediate_size = 1536;
  return c;
}

ModelConfig deepseek_v3() {
  ModelConfig c;  // deepseek-ai/DeepSeek-V3 config.json
  c.arch = Arch::kDeepseekV3;
  c.vocab_size = 129280;
  c.hidden_size = 7168;
  c.intermediate_size = 18432;
  c.num_layers = 61;
  c.num_heads = 128;
  c.num_kv_heads = 128;
  c.max_position_embeddings = 163840;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  RopeScaling yarn;
  yarn.rope_type = "yarn";
  yarn.factor = 40.0;
  yarn.original_max_position_embeddings = 4096;
  yarn.beta_fast = 32.0;
  yarn.beta_slow = 1.0;
  yarn.mscale = 1.0;
  yarn.mscale_all_dim = 1.0;
  c.rope_scaling = yarn;
  c.torch_dtype = DType::kBF16;
  c.bos_token_id = 0;
  c.eos_token_ids = {1};
  c.mla = MlaConfig{1536, 512, 128, 64, 128, true};
  c.head_dim = c.mla.qk_rope_head_dim;
  c.num_experts = 256;
  c.num_experts_per_tok = 8;
  c.moe_intermediate_size = 2048;
  c.norm_topk_prob = true;
  c.deepseek_moe = DeepseekMoeConfig{1, 8, 4, 2.5, 3, 1};
  return c;
}

// DeepSeek-V3's widths with 6 layers (3 dense, 3 MoE): 38.1B parameters, 76 GB in bf16,
// one GPU's worth, for profiling.
ModelConfig deepseek_v3_6l() {
  ModelConfig c = deepseek_v3();
  c.num_layers = 6;
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
    case Arch::kDeepseekV3:  // the shape of tests/data/fixtures/models/deepseek-v3-tiny, q_lora_rank null
      c.num_layers = 3;
      c.num_kv_heads = c.num_heads;
      c.intermediate_size = 160;
      c.rope_theta = 10000.0;
      c.mla = MlaConfig{0, 32, 16, 8, 16, true};
      c.head_dim = c.mla.qk_rope_head_dim;
      c.rope_scaling = RopeScaling{"yarn", 4.0, 1.0, 4.0, 1024, 32.0, 1.0, 1.0, 1.0, 0.0, true};
      c.num_experts = 8;
      c.num_experts_per_tok = 2;
      c.moe_intermediate_size = 32;
      c.norm_topk_prob = true;
      c.deepseek_moe = DeepseekMoeConfig{1, 2, 1, 2.5, 1, 1};
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
      {"llama3.1-70b", "the shape of Llama-3.1-70B (80 layers, GQA 64/8)", llama31_70b()},
      {"qwen3-8b", "the shape of Qwen3-8B", qwen3_8b()},
      {"qwen3-30b-a3b", "the shape of Qwen3-30B-A3B (128 experts, 8 per token)", qwen3_30b_a3b()},
      {"qwen3-235b-a22b", "the shape of Qwen3-235B-A22B (94 layers, 128 experts, 8 per token)", qwen3_235b_a22b()},
      {"tiny-llama", "tiny llama (vocab 512) with llama3 rope scaling, for tests", tiny(Arch::kLlama)},
      {"tiny-qwen2", "tiny qwen2 (vocab 512) with q/k/v bias and tied embeddings, for tests", tiny(Arch::kQwen2)},
      {"tiny-qwen3", "tiny qwen3 (vocab 512) with q/k norm, for tests", tiny(Arch::kQwen3)},
      {"tiny-qwen3-moe", "tiny qwen3_moe (vocab 512, 8 experts, a dense layer 1), for tests", tiny(Arch::kQwen3Moe)},
      {"deepseek-v3", "the shape of DeepSeek-V3 (671B: MLA, 256 experts, 8 per token, yarn)", deepseek_v3()},
      {"deepseek-v3-6l", "DeepSeek-V3's widths with 6 layers (3 dense, 3 MoE; 76 GB bf16), for one GPU",
       deepseek_v3_6l()},
      {"tiny-deepseek-v3", "tiny deepseek_v3 (vocab 512, MLA with q_lora_rank null, yarn, 8 experts), for tests",
       tiny(Arch::kDeepseekV3)},
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
  if (arch == Arch::kLlama) return "tokenizer-llama3";
  if (arch == Arch::kDeepseekV3) return "tokenizer-deepseek_v3";
  return "tokenizer-qwen3";
}

}  // namespace baton

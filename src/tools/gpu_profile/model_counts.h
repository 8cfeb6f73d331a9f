// The byte and FLOP counts the GPU profile divides by time (decode bandwidth
// and FLOP utilisation, prefill FLOP utilisation), per model shape: dense
// and MoE layers counted apart (DeepSeek-V3's first dense layers, its shared
// experts and routing bias), multi-head latent attention's projections and
// its latent KV cache (kv_lora_rank + rope values per token per layer).
#pragma once

#include "model/model_config.h"

namespace baton::cuda {

// Bytes of KV cache one token holds over all layers, bf16: K and V per KV
// head, or MLA's one latent row.
double kv_bytes_per_token(const ModelConfig& c);

// Expected distinct experts `tokens` tokens choose (k of E each, uniformly).
double expected_experts(const ModelConfig& c, double tokens);

// Weight bytes one step reads when `tokens` tokens go through it: all
// attention, router, dense and shared-expert weights, the experts the tokens
// are expected to hit, the LM head; bf16, but an FP8 model's dense
// projections at 1 byte (the CUDA backend keeps them in e4m3).
double weight_bytes_read(const ModelConfig& c, double tokens);

// Linear (GEMM) FLOPs of `tokens` tokens, the LM head at `samples` rows;
// MoE layers count their k routed experts and the shared ones.
double linear_flops(const ModelConfig& c, double tokens, double samples);

// Attention FLOPs (QK^T and PV) of query tokens attending to `keys_total`
// keys in all, by the model's own definition: 4 heads head_dim per key, and
// for MLA 2 heads (qk_head_dim + v_head_dim) per key (the expanded form,
// which is what the model asks for, however it is computed).
double attention_flops(const ModelConfig& c, double keys_total);

// For MLA, the attention FLOPs the absorbed form executes: 2 heads
// (kv_lora_rank + rope + kv_lora_rank) per key. Else attention_flops().
double attention_flops_executed(const ModelConfig& c, double keys_total);

}  // namespace baton::cuda

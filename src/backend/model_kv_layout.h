// The KV layout (kv_layout.h) a model's cache has: per-head K and V, or for
// multi-head latent attention (config.is_mla()) one latent row of
// kv_lora_rank + qk_rope_head_dim values per token per layer. block_size and
// num_blocks are left at their defaults.
#pragma once

#include "kv/kv_layout.h"
#include "model/model_config.h"

namespace baton {

inline KvLayout model_kv_layout(const ModelConfig& config, DType dtype) {
  KvLayout l;
  l.num_layers = config.num_layers;
  l.dtype = dtype;
  if (config.is_mla()) {
    l.num_kv_heads = 1;
    l.head_dim = config.mla.latent_dim();
    l.kv_lora_rank = config.mla.kv_lora_rank;
    l.qk_rope_head_dim = config.mla.qk_rope_head_dim;
  } else {
    l.num_kv_heads = config.num_kv_heads;
    l.head_dim = config.head_dim;
  }
  return l;
}

}  // namespace baton

// The paged KV cache's memory layout, defined once here, below both the
// backends (which allocate it) and kv_transfer (whose KvRegionDesc holds it
// to move blocks and check peers). One allocation holds all blocks; a block
// is contiguous across all layers, so a request's KV moves as whole-block
// copies:
//
//   kv[num_blocks][num_layers][2 (K, V)][block_size][num_kv_heads][head_dim]
//
// The token at slot s = block_id * block_size + offset lives in block
// block_id at row offset.
//
// Multi-head latent attention (DeepSeek-V3, kv_lora_rank > 0) caches one
// latent row per token per layer and no separate V, as vLLM's MLA cache does:
//
//   kv[num_blocks][num_layers][1][block_size][kv_lora_rank + qk_rope_head_dim]
//
// a row being the normalised latent then the roped key part; num_kv_heads is
// 1 and head_dim the row width, so token_elems() holds for both layouts.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/dtype.h"

namespace baton {

struct KvLayout {
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int block_size = 16;
  int num_blocks = 0;
  DType dtype = DType::kF32;
  // MLA only (0 otherwise): the latent's width and the rope dims cached after it.
  int kv_lora_rank = 0;
  int qk_rope_head_dim = 0;

  bool is_latent() const { return kv_lora_rank > 0; }
  // Rows each token has per layer: K and V, or the one latent row.
  int planes() const { return is_latent() ? 1 : 2; }
  // Elements of one K (or V, or latent) row of one token: [num_kv_heads, head_dim].
  int64_t token_elems() const { return static_cast<int64_t>(num_kv_heads) * head_dim; }
  // Elements of K (or V, or latent) of one layer of one block: [block_size, kv_heads, head_dim].
  int64_t half_layer_block_elems() const { return token_elems() * block_size; }
  int64_t layer_block_elems() const { return planes() * half_layer_block_elems(); }
  int64_t block_elems() const { return layer_block_elems() * num_layers; }
  size_t block_bytes() const { return static_cast<size_t>(block_elems()) * dtype_size(dtype); }
  size_t total_bytes() const { return block_bytes() * static_cast<size_t>(num_blocks); }

  // Element offset of K (kv=0) or V (kv=1), or of the latent (kv=0), for
  // (block, layer, row) from the base.
  int64_t offset(int64_t block, int layer, int kv, int row) const {
    return block * block_elems() + layer * layer_block_elems() + kv * half_layer_block_elems() +
           static_cast<int64_t>(row) * token_elems();
  }
};

// Where a backend's KV cache lives, for kv_transfer to register.
struct KvMemory {
  void* base = nullptr;  // start of block 0
  KvLayout layout;
  bool on_device = false;  // false: host memory; true: CUDA device memory
  int device_id = -1;      // CUDA device ordinal when on_device
};

}  // namespace baton

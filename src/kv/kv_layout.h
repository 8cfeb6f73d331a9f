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
#include <vector>

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

// How a tensor-parallel instance's KV heads lie across its ranks
// (docs/parallelism.md): every rank holds kv_heads_per_rank of the model's
// KV heads, each head held by kv_head_replicas ranks; rank r holds the heads
// from first_kv_head(r). An MLA latent row counts as one KV head held by
// every rank. {1, H, 1}: a single rank holding all H heads.
struct KvTpLayout {
  int tp_size = 1;
  int kv_heads_per_rank = 0;
  int kv_head_replicas = 1;

  // The model's KV heads (each counted once).
  int total_kv_heads() const { return tp_size * kv_heads_per_rank / kv_head_replicas; }
  int first_kv_head(int rank) const { return rank / kv_head_replicas * kv_heads_per_rank; }
  bool operator==(const KvTpLayout&) const = default;
};

// Where a backend's KV cache lives, for kv_transfer to register.
struct KvMemory {
  void* base = nullptr;    // start of block 0 (rank 0's cache when rank_bases is set)
  KvLayout layout;         // of one rank's cache (its KV heads only)
  bool on_device = false;  // false: host memory; true: CUDA device memory
  int device_id = -1;      // CUDA device ordinal when on_device
  // A tensor-parallel instance: how its KV heads lie across the ranks, and
  // each rank's cache ([tp.tp_size], each in `layout`; rank_bases[0] ==
  // base). Empty at TP=1.
  KvTpLayout tp;
  std::vector<void*> rank_bases;

  // tp, or at TP=1 the one rank holding every KV head of `layout`.
  KvTpLayout tp_layout() const { return rank_bases.empty() ? KvTpLayout{1, layout.num_kv_heads, 1} : tp; }
};

}  // namespace baton

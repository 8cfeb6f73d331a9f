// The engine's knobs (vLLM's names). The CLI fills them from engine flags
// (cli/engine_flags.h); tests set them directly.
#pragma once

#include <cstddef>
#include <cstdint>

namespace baton {

struct EngineOptions {
  int block_size = 16;                // tokens per KV block
  int num_kv_blocks = 0;              // 0 = from kv_cache_bytes / the backend
  size_t kv_cache_bytes = 0;          // 0 = the backend's own rule
  int max_num_batched_tokens = 8192;  // token budget of one step
  int max_num_seqs = 256;             // running requests at most
  int max_model_len = 0;              // 0 = the model's max_position_embeddings
  bool enable_prefix_caching = true;
  uint64_t seed = 0;  // seeds requests that bring none
  // AsyncEngine: requests queued for a slot at most (0 = unbounded); beyond
  // it submit() is kResourceExhausted (serve: 503 with Retry-After). Four
  // batches of the default max_num_seqs: more would wait minutes anyway.
  int max_waiting_requests = 1024;
};

}  // namespace baton

// What a block pool tells the outside about its prefix cache (vLLM's KV
// events): a block hash became reusable (stored), stopped being reusable
// (removed: the block was evicted for a new allocation), or every cached
// prefix was dropped (cleared). A router that applies them in order knows
// which prefixes the instance can serve from cache (router/kv_index.h).
#pragma once

#include <cstdint>

#include "kv/block_hash.h"

namespace baton {

struct KvEvent {
  enum class Kind : uint8_t { kStored, kRemoved, kCleared };
  Kind kind = Kind::kStored;
  BlockHash hash = 0;  // unused for kCleared

  bool operator==(const KvEvent&) const = default;
};

const char* kv_event_kind_name(KvEvent::Kind kind);  // "stored", "removed", "cleared"

}  // namespace baton

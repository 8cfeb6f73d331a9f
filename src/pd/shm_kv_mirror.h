// ShmKvMirror: with the shm transport and host KV, peers map the prefill's
// region, so it is served from a shared-memory mirror of the backend's KV
// cache: a finished prompt's blocks are copied into it at the same block ids
// when its lease starts (one memcpy per run of consecutive blocks).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv/kv_layout.h"
#include "kv_transfer/shm_buffer.h"

namespace baton {

class ShmKvMirror {
 public:
  // `memory` is host KV. Removes the mirrors of prefill processes that are
  // gone (killed with SIGKILL) first.
  static Result<std::unique_ptr<ShmKvMirror>> create(const KvMemory& memory);

  // Removes the mirrors of prefill processes that are gone (killed with SIGKILL).
  static void remove_stale();

  // Copies these blocks of the backend's cache into the mirror.
  void copy_blocks(const std::vector<int>& block_ids);
  void* data() const { return buffer_->data(); }
  const std::string& name() const { return buffer_->name(); }

 private:
  ShmKvMirror(std::unique_ptr<SharedMemoryBuffer> buffer, const uint8_t* source, size_t block_bytes)
      : buffer_(std::move(buffer)), source_(source), block_bytes_(block_bytes) {}

  std::unique_ptr<SharedMemoryBuffer> buffer_;
  const uint8_t* source_;  // the backend's KV
  size_t block_bytes_;
};

}  // namespace baton

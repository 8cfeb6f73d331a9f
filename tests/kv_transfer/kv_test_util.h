// Helpers for kv_transfer tests: small KV regions with random contents, in
// ordinary memory or in POSIX shared memory.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kv_transfer/kv_region.h"
#include "kv_transfer/shm_buffer.h"

namespace baton::testing {

// 2 layers, 2 KV heads, head_dim 8, block 4 tokens, F16: 1 KiB blocks.
inline KvRegionDesc small_shape(int64_t num_blocks) {
  KvRegionDesc d;
  d.layout.num_blocks = static_cast<int>(num_blocks);
  d.layout.dtype = DType::kF16;
  d.layout.num_layers = 2;
  d.layout.num_kv_heads = 2;
  d.layout.head_dim = 8;
  d.layout.block_size = 4;
  return d;
}

// Owns a region's memory (heap or shm) and fills it.
class TestRegion {
 public:
  static TestRegion heap(KvRegionDesc shape) {
    TestRegion r;
    r.heap_.assign(shape.total_bytes(), 0);
    shape.base = r.heap_.data();
    r.desc_ = shape;
    return r;
  }
  static TestRegion shm(KvRegionDesc shape) {
    TestRegion r;
    auto buf = SharedMemoryBuffer::create(SharedMemoryBuffer::unique_name("test"), shape.total_bytes());
    EXPECT_TRUE(buf.is_ok()) << buf.status().to_string();
    r.shm_ = std::move(buf).value();
    shape.base = r.shm_->data();
    shape.shm_name = r.shm_->name();
    r.desc_ = shape;
    return r;
  }

  const KvRegionDesc& desc() const { return desc_; }
  uint8_t* block(int64_t id) const { return desc_.block_ptr(id); }

  // Deterministic random bytes from a seed (same seed, same bytes).
  void fill_random(uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto* p = static_cast<uint8_t*>(desc_.base);
    const size_t n = desc_.total_bytes();
    for (size_t i = 0; i + 8 <= n; i += 8) {
      const uint64_t v = rng();
      std::memcpy(p + i, &v, 8);
    }
  }
  void fill(uint8_t value) { std::memset(desc_.base, value, desc_.total_bytes()); }

  bool block_equals(int64_t id, const TestRegion& other, int64_t other_id) const {
    return std::memcmp(block(id), other.block(other_id), desc_.block_bytes()) == 0;
  }

 private:
  KvRegionDesc desc_;
  std::vector<uint8_t> heap_;
  std::unique_ptr<SharedMemoryBuffer> shm_;
};

}  // namespace baton::testing

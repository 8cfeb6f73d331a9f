// --kv-cache-dtype fp8 through EngineCore on the CPU backend: the same
// --kv-cache-bytes budget holds dtype_size(F32) = 4x the blocks (on CUDA,
// BF16 -> 1 byte: 2x), and the cache the backend registers for PD says
// F8_E4M3.
#include <gtest/gtest.h>

#include "backend/backend_factory.h"
#include "backend/fixture_models.h"
#include "engine/engine_core.h"
#include "model/checkpoint.h"

namespace baton {
namespace {

// The same KV budget holds 4x the blocks at fp8 (F32 -> 1 byte; on CUDA,
// BF16 -> 1 byte: 2x), and the cache the backend registers says F8_E4M3.
TEST(EngineKvFp8, SameMemoryHoldsFourTimesTheBlocks) {
  auto ckpt = Checkpoint::open(testing::fixture_model_dir("qwen3-tiny"));
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  constexpr size_t kBudget = size_t{3} << 20;
  int blocks[2] = {0, 0};
  size_t block_bytes[2] = {0, 0};
  for (KvCacheDType kv : {KvCacheDType::kAuto, KvCacheDType::kFp8}) {
    BackendOptions o;
    o.num_threads = 1;
    o.kv_cache_dtype = kv;
    o.cpu_kv_cache_bytes = kBudget;
    auto made = make_backend("cpu", **ckpt, o);
    ASSERT_TRUE(made.is_ok()) << made.status().to_string();
    std::unique_ptr<Backend> backend = std::move(made).value();
    const int i = kv == KvCacheDType::kFp8;
    block_bytes[i] = backend->kv_block_bytes(16);
    Backend* raw = backend.get();
    EngineOptions opts;
    opts.block_size = 16;
    auto core = EngineCore::create(std::move(backend), nullptr, opts);
    ASSERT_TRUE(core.is_ok()) << core.status().to_string();
    blocks[i] = (*core)->num_kv_blocks();
    const KvMemory m = raw->kv_memory();
    EXPECT_EQ(m.layout.dtype, i ? DType::kF8E4M3 : DType::kF32);
    EXPECT_EQ(m.layout.num_blocks, blocks[i]);
    EXPECT_LE(m.layout.total_bytes(), kBudget);
  }
  EXPECT_EQ(block_bytes[0], 4 * block_bytes[1]);
  EXPECT_EQ(blocks[1], 4 * blocks[0]) << "auto " << blocks[0] << " blocks, fp8 " << blocks[1];
}

}  // namespace
}  // namespace baton

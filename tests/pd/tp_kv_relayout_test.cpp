// TpKvRelayout, byte for byte: a TP=1 cache whose every value names its
// block, layer, plane, row, head and element is laid out as a TP=a
// instance's ranks would hold it; the prefill side gathers it into the wire
// region, which must equal the TP=1 cache; the decode side at TP=b scatters
// that region to its ranks, each of which must then hold exactly the TP=1
// bytes of the heads it owns (replicas included), for every pair of layouts
// the fixtures' 2 KV heads allow, and for an MLA latent row (one "head" on
// every rank); the same through the device path (a region from the
// DeviceCopier and its strided copies, here a host-memory stand-in), one
// strided copy per run of consecutive blocks and rank.
#include "pd/tp_kv_relayout.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace baton {
namespace {

KvLayout layout_of(int kv_heads, int head_dim, int kv_lora_rank) {
  KvLayout l;
  l.num_layers = 2;
  l.num_kv_heads = kv_heads;
  l.head_dim = head_dim;
  l.block_size = 4;
  l.num_blocks = 5;
  l.dtype = DType::kF32;
  l.kv_lora_rank = kv_lora_rank;
  l.qk_rope_head_dim = kv_lora_rank > 0 ? head_dim - kv_lora_rank : 0;
  return l;
}

// A DeviceCopier over host memory: what the CUDA one does, minus the GPU.
class HostBackedCopier : public DeviceCopier {
 public:
  Status to_host(void* dst, const void* src, size_t n) override { return copy(dst, src, n); }
  Status to_device(void* dst, const void* src, size_t n) override { return copy(dst, src, n); }
  Result<void*> alloc_device(size_t num_bytes) override {
    ++num_allocs;
    return std::malloc(num_bytes);
  }
  void free_device(void* ptr) override {
    ++num_frees;
    std::free(ptr);
  }
  Status copy_strided(const std::vector<StridedCopy>& copies) override {
    for (const StridedCopy& c : copies) {
      for (size_t r = 0; r < c.rows; ++r)
        std::memcpy(static_cast<char*>(c.dst) + r * c.dst_pitch, static_cast<const char*>(c.src) + r * c.src_pitch,
                    c.width);
    }
    num_copies += static_cast<int>(copies.size());
    return Status::ok();
  }
  int num_allocs = 0, num_frees = 0, num_copies = 0;

 private:
  static Status copy(void* dst, const void* src, size_t n) {
    std::memcpy(dst, src, n);
    return Status::ok();
  }
};

// The TP=1 cache: a distinct float per element.
std::vector<float> reference_cache(const KvLayout& l) {
  std::vector<float> v(static_cast<size_t>(l.block_elems() * l.num_blocks));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) + 0.5f;
  return v;
}

// A TP instance's ranks, each holding its heads of the reference (or zeros).
struct Ranks {
  KvMemory memory;
  std::vector<std::vector<float>> caches;

  Ranks(const KvLayout& full, int tp_size, bool fill, bool on_device = false) {
    memory.on_device = on_device;
    memory.device_id = on_device ? 0 : -1;
    const int heads = full.num_kv_heads;
    memory.tp.tp_size = tp_size;
    memory.tp.kv_heads_per_rank = tp_size <= heads ? heads / tp_size : 1;
    memory.tp.kv_head_replicas = tp_size * memory.tp.kv_heads_per_rank / heads;
    memory.layout = full;
    memory.layout.num_kv_heads = memory.tp.kv_heads_per_rank;
    const std::vector<float> ref = reference_cache(full);
    caches.assign(tp_size, std::vector<float>(static_cast<size_t>(memory.layout.block_elems() * full.num_blocks)));
    for (int r = 0; r < tp_size; ++r) {
      if (fill) copy_heads(full, ref.data(), r, /*to_rank=*/true);
      memory.rank_bases.push_back(caches[r].data());
    }
    memory.base = memory.rank_bases[0];
  }

  // Rank r's heads between its cache and a TP=1 cache (independent of the
  // code under test: element by element).
  void copy_heads(const KvLayout& full, const float* ref, int r, bool to_rank) {
    const KvLayout& own = memory.layout;
    for (int b = 0; b < full.num_blocks; ++b)
      for (int l = 0; l < full.num_layers; ++l)
        for (int p = 0; p < full.planes(); ++p)
          for (int row = 0; row < full.block_size; ++row)
            for (int h = 0; h < own.num_kv_heads; ++h)
              for (int d = 0; d < full.head_dim; ++d) {
                const int head = memory.tp.first_kv_head(r) + h;
                float& mine = caches[r][own.offset(b, l, p, row) + h * own.head_dim + d];
                const float theirs = ref[full.offset(b, l, p, row) + head * full.head_dim + d];
                if (to_rank) mine = theirs;
                EXPECT_EQ(std::memcmp(&mine, &theirs, sizeof(float)), 0)
                    << "rank " << r << " block " << b << " layer " << l << " plane " << p << " row " << row
                    << " KV head " << head << " element " << d;
              }
  }
};

// `device`: the ranks' caches count as device memory, relayout through `device`.
void check_handoff(const KvLayout& full, int prefill_tp, int decode_tp, HostBackedCopier* device = nullptr) {
  SCOPED_TRACE("TP=" + std::to_string(prefill_tp) + " -> TP=" + std::to_string(decode_tp) +
               (device ? " (device)" : ""));
  const std::vector<float> ref = reference_cache(full);
  const std::vector<int> blocks = {3, 0, 4, 1, 2};
  // The wire region a TP=1 prefill serves is its cache itself.
  std::vector<float> wire = ref;
  if (prefill_tp > 1) {
    Ranks prefill(full, prefill_tp, /*fill=*/true, device != nullptr);
    auto relayout = TpKvRelayout::create(prefill.memory, /*shared=*/false, device);
    ASSERT_TRUE(relayout.is_ok()) << relayout.status().to_string();
    EXPECT_EQ((*relayout)->on_device(), device != nullptr);
    EXPECT_EQ((*relayout)->wire_layout().num_kv_heads, full.num_kv_heads);
    EXPECT_EQ((*relayout)->wire_layout().block_bytes(), full.block_bytes());
    ASSERT_TRUE((*relayout)->gather(blocks).is_ok());
    std::memcpy(wire.data(), (*relayout)->data(), full.total_bytes());
    EXPECT_EQ(std::memcmp(wire.data(), ref.data(), full.total_bytes()), 0);
  }
  if (decode_tp == 1) {
    EXPECT_EQ(std::memcmp(wire.data(), ref.data(), full.total_bytes()), 0);
    return;
  }
  Ranks decode(full, decode_tp, /*fill=*/false, device != nullptr);
  auto relayout = TpKvRelayout::create(decode.memory, /*shared=*/false, device);
  ASSERT_TRUE(relayout.is_ok()) << relayout.status().to_string();
  std::memcpy((*relayout)->data(), wire.data(), full.total_bytes());  // what a transport's read leaves there
  ASSERT_TRUE((*relayout)->scatter(std::vector<int64_t>(blocks.begin(), blocks.end())).is_ok());
  for (int r = 0; r < decode_tp; ++r) decode.copy_heads(full, ref.data(), r, /*to_rank=*/false);
}

TEST(TpKvRelayout, EveryLayoutPairIsByteExactPerHead) {
  const KvLayout gqa = layout_of(/*kv_heads=*/2, /*head_dim=*/8, 0);
  for (int a : {1, 2, 4})
    for (int b : {1, 2, 4})
      if (a > 1 || b > 1) check_handoff(gqa, a, b);
}

TEST(TpKvRelayout, MlaLatentIsReplicatedOnEveryRank) {
  const KvLayout latent = layout_of(/*kv_heads=*/1, /*head_dim=*/12, /*kv_lora_rank=*/8);
  check_handoff(latent, 2, 1);
  check_handoff(latent, 1, 4);
  check_handoff(latent, 4, 2);
}

TEST(TpKvRelayout, DeviceCachesRelayoutThroughTheCopier) {
  const KvLayout gqa = layout_of(2, 8, 0), latent = layout_of(1, 12, 8);
  HostBackedCopier copier;
  const std::vector<std::pair<int, int>> pairs = {{2, 1}, {1, 2}, {4, 2}, {2, 4}, {1, 4}};
  for (auto [a, b] : pairs) check_handoff(gqa, a, b, &copier);
  check_handoff(latent, 2, 1, &copier);
  check_handoff(latent, 1, 2, &copier);
  EXPECT_GT(copier.num_allocs, 0);
  EXPECT_EQ(copier.num_frees, copier.num_allocs) << "every device region freed with its relayout";
}

TEST(TpKvRelayout, ARunOfBlocksIsOneCopyPerRank) {
  const KvLayout gqa = layout_of(2, 8, 0);
  HostBackedCopier copier;
  Ranks prefill(gqa, 4, /*fill=*/true, /*on_device=*/true);  // 2 heads on 4 ranks: 2 groups to gather
  auto relayout = TpKvRelayout::create(prefill.memory, false, &copier);
  ASSERT_TRUE(relayout.is_ok()) << relayout.status().to_string();
  ASSERT_TRUE((*relayout)->gather({1, 2, 3}).is_ok());
  EXPECT_EQ(copier.num_copies, 2) << "one run, one copy per head group";
  ASSERT_TRUE((*relayout)->scatter({4, 0, 1}).is_ok());
  EXPECT_EQ(copier.num_copies, 2 + 2 * 4) << "two runs ({4}, {0, 1}), each to the 4 ranks";
}

TEST(TpKvRelayout, RefusesWhatItCannotRelayout) {
  const KvLayout gqa = layout_of(2, 8, 0);
  Ranks ranks(gqa, 2, false);
  KvMemory device = ranks.memory;
  device.on_device = true;
  Result<std::unique_ptr<TpKvRelayout>> no_copier = TpKvRelayout::create(device, false);
  EXPECT_EQ(no_copier.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(no_copier.status().message().find("device copier"), std::string::npos) << no_copier.status().to_string();
  // A copier without device memory (a build without CUDA's): the region is refused.
  struct HostOnly : DeviceCopier {
    Status to_host(void*, const void*, size_t) override { return Status::ok(); }
    Status to_device(void*, const void*, size_t) override { return Status::ok(); }
  } host_only;
  EXPECT_EQ(TpKvRelayout::create(device, false, &host_only).status().code(), StatusCode::kUnimplemented);
  KvMemory missing = ranks.memory;
  missing.rank_bases.pop_back();
  EXPECT_NE(TpKvRelayout::create(missing, false).status().message().find("every rank's cache"), std::string::npos);
  KvMemory unallocated = ranks.memory;
  unallocated.rank_bases[1] = nullptr;
  EXPECT_EQ(TpKvRelayout::create(unallocated, false).status().code(), StatusCode::kFailedPrecondition);
}

TEST(TpKvRelayout, SharedRegionHasAName) {
  Ranks ranks(layout_of(2, 8, 0), 2, true);
  auto relayout = TpKvRelayout::create(ranks.memory, /*shared=*/true);
  ASSERT_TRUE(relayout.is_ok()) << relayout.status().to_string();
  EXPECT_NE((*relayout)->shm_name().find("pdkv"), std::string::npos);
  EXPECT_EQ(wire_kv_layout(ranks.memory).num_kv_heads, 2);
}

}  // namespace
}  // namespace baton

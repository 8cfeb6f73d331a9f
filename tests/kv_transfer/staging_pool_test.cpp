// StagingPool: pairs of staging buffers reused across transfers, the bound
// (waiting, timing out, cancelled), concurrent users never sharing a pair,
// pairs grown for chunks larger than the default, the heap fallback when the
// copier cannot allocate, and every buffer given back to the copier.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kv_transfer/staging_pool.h"
#include "support/wait.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

// Allocates through the default (heap) path and counts; can be told to fail.
class AllocCountingCopier : public DeviceCopier {
 public:
  Status to_host(void* dst, const void* src, size_t n) override {
    std::memcpy(dst, src, n);
    return Status::ok();
  }
  Status to_device(void* dst, const void* src, size_t n) override {
    std::memcpy(dst, src, n);
    return Status::ok();
  }
  Result<void*> alloc_host(size_t n) override {
    if (fail_alloc) return resource_exhausted("pinned memory refused (test)");
    ++num_allocs;
    std::lock_guard<std::mutex> lock(mu);
    auto p = DeviceCopier::alloc_host(n);
    if (p.is_ok()) live.insert(*p);
    return p;
  }
  void free_host(void* p) override {
    ++num_frees;
    {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_EQ(live.erase(p), 1u) << "freed a buffer this copier did not allocate";
    }
    DeviceCopier::free_host(p);
  }
  std::atomic<bool> fail_alloc{false};
  std::atomic<int> num_allocs{0};
  std::atomic<int> num_frees{0};
  std::mutex mu;
  std::set<void*> live;
};

ReadContext within_ms(int64_t ms, const std::atomic<bool>* cancelled = nullptr) {
  return ReadContext{deadline_after_ms(ms), cancelled};
}

TEST(StagingPool, PairsAreReusedAcrossLeases) {
  AllocCountingCopier copier;
  {
    StagingPool pool(&copier, 4096, 4);
    std::array<uint8_t*, 2> first{};
    {
      auto lease = pool.acquire(1000, within_ms(1000));
      ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
      first = lease->buffers();
      EXPECT_NE(first[0], nullptr);
      EXPECT_NE(first[1], nullptr);
      EXPECT_NE(first[0], first[1]);
      EXPECT_EQ(lease->buffer_bytes(), 4096u);  // the pool's size, not the ask
      std::memset(first[0], 1, 4096);           // the whole capacity is usable
      std::memset(first[1], 2, 4096);
    }
    for (int i = 0; i < 5; ++i) {
      auto lease = pool.acquire(4096, within_ms(1000));
      ASSERT_TRUE(lease.is_ok());
      EXPECT_EQ(lease->buffers(), first) << "a new pair for a sequential transfer";
    }
    const StagingPoolStats s = pool.stats();
    EXPECT_EQ(s.num_pairs, 1);
    EXPECT_EQ(s.num_idle, 1);
    EXPECT_EQ(s.num_allocations, 1u);
    EXPECT_EQ(s.num_reuses, 5u);
    EXPECT_EQ(s.num_waits, 0u);
    EXPECT_EQ(copier.num_allocs.load(), 2);
    EXPECT_EQ(copier.num_frees.load(), 0);
  }
  EXPECT_EQ(copier.num_frees.load(), 2);  // the pool gave both buffers back
}

TEST(StagingPool, LeaseMovesAndResets) {
  AllocCountingCopier copier;
  StagingPool pool(&copier, 256, 1);
  auto a = pool.acquire(10, within_ms(1000));
  ASSERT_TRUE(a.is_ok());
  StagingPool::Lease moved = std::move(a).value();
  EXPECT_TRUE(moved.valid());
  StagingPool::Lease other;
  EXPECT_FALSE(other.valid());
  EXPECT_EQ(other.buffers()[0], nullptr);
  other = std::move(moved);
  EXPECT_FALSE(moved.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(pool.stats().num_idle, 0);
  other.reset();
  EXPECT_FALSE(other.valid());
  EXPECT_EQ(pool.stats().num_idle, 1);
}

TEST(StagingPool, BoundedWaitsThenTimesOutOrIsCancelled) {
  AllocCountingCopier copier;
  StagingPool pool(&copier, 1024, 2);
  auto a = pool.acquire(1024, within_ms(1000));
  auto b = pool.acquire(1024, within_ms(1000));
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(pool.stats().num_pairs, 2);

  const auto t0 = SteadyClock::now();
  auto late = pool.acquire(1024, within_ms(60));
  EXPECT_EQ(late.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(late.status().message().find("staging buffer"), std::string::npos) << late.status().message();
  EXPECT_GE(SteadyClock::now() - t0, 50ms);

  // Cancelled (and below, released) once the acquire is waiting: a wait on
  // the pool's own count of waits, not on time.
  std::atomic<bool> cancelled{false};
  const uint64_t waits_before_cancel = pool.stats().num_waits;
  std::thread canceller([&] {
    ::baton::testing::wait_until([&] { return pool.stats().num_waits > waits_before_cancel; }, 10.0, 1);
    cancelled = true;
  });
  auto gone = pool.acquire(1024, within_ms(10000, &cancelled));
  canceller.join();
  EXPECT_EQ(gone.status().code(), StatusCode::kAborted);

  // A pair given back wakes a waiter, which gets that very pair.
  const auto b_buffers = b->buffers();
  const uint64_t waits_before_release = pool.stats().num_waits;
  std::thread releaser([&] {
    ::baton::testing::wait_until([&] { return pool.stats().num_waits > waits_before_release; }, 10.0, 1);
    b->reset();
  });
  auto waited = pool.acquire(1024, within_ms(10000));
  releaser.join();
  ASSERT_TRUE(waited.is_ok()) << waited.status().to_string();
  EXPECT_EQ(waited->buffers(), b_buffers);
  const StagingPoolStats s = pool.stats();
  EXPECT_EQ(s.num_pairs, 2);
  EXPECT_EQ(s.num_allocations, 2u);
  EXPECT_EQ(s.num_waits, 3u);
  EXPECT_EQ(copier.num_allocs.load(), 4);
}

// Many threads lease, stamp both buffers with their own byte, hold, and check
// the stamp survived: no two users ever hold the same pair. The pool never
// grows past its bound.
TEST(StagingPool, ConcurrentUsersNeverSharePairs) {
  AllocCountingCopier copier;
  constexpr size_t kBytes = 2048;
  StagingPool pool(&copier, kBytes, 3);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        auto lease = pool.acquire(kBytes, within_ms(10000));
        if (!lease.is_ok()) {
          ++failures;
          continue;
        }
        const auto bufs = lease->buffers();
        const uint8_t stamp = static_cast<uint8_t>(t * 40 + i);
        std::memset(bufs[0], stamp, kBytes);
        std::memset(bufs[1], stamp ^ 0xff, kBytes);
        // Holds the lease a moment (simulated work), so that the threads'
        // leases overlap; the test checks no two share a pair.
        std::this_thread::sleep_for(100us);
        for (size_t k = 0; k < kBytes; ++k) {
          if (bufs[0][k] != stamp || bufs[1][k] != static_cast<uint8_t>(stamp ^ 0xff)) {
            ++failures;
            break;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const StagingPoolStats s = pool.stats();
  EXPECT_LE(s.num_pairs, 3);
  EXPECT_EQ(s.num_idle, s.num_pairs);
  EXPECT_EQ(s.num_allocations + s.num_reuses, 8u * 40u);
  EXPECT_EQ(copier.num_allocs.load(), 2 * s.num_pairs);
}

// A chunk larger than the pool's size (one block bigger than staging_bytes)
// gets a larger pair; at the bound, an idle pair too small is replaced.
TEST(StagingPool, GrowsForLargerChunksWithinTheBound) {
  AllocCountingCopier copier;
  StagingPool pool(&copier, 1024, 1);
  { ASSERT_TRUE(pool.acquire(512, within_ms(1000)).is_ok()); }
  auto big = pool.acquire(5000, within_ms(1000));
  ASSERT_TRUE(big.is_ok());
  EXPECT_GE(big->buffer_bytes(), 5000u);
  std::memset(big->buffers()[1], 7, 5000);
  big->reset();
  EXPECT_EQ(pool.stats().num_pairs, 1);
  EXPECT_EQ(copier.num_frees.load(), 2);            // the small pair went back
  auto small = pool.acquire(100, within_ms(1000));  // the big pair serves small asks too
  ASSERT_TRUE(small.is_ok());
  EXPECT_GE(small->buffer_bytes(), 5000u);
  EXPECT_EQ(pool.stats().num_allocations, 2u);
}

TEST(StagingPool, ErrorsAndTheHeapFallback) {
  AllocCountingCopier copier;
  StagingPool pool(&copier, 1024, 2);
  auto zero = pool.acquire(0, within_ms(1000));
  EXPECT_EQ(zero.status().code(), StatusCode::kInvalidArgument);

  // The copier cannot pin: the pool still stages, through plain heap memory,
  // and frees it itself (the copier's live set stays empty).
  copier.fail_alloc = true;
  {
    auto lease = pool.acquire(1024, within_ms(1000));
    ASSERT_TRUE(lease.is_ok()) << lease.status().to_string();
    std::memset(lease->buffers()[0], 3, 1024);
    std::memset(lease->buffers()[1], 4, 1024);
    EXPECT_EQ(pool.stats().num_pinned_fallbacks, 2u);
  }
  EXPECT_EQ(copier.num_allocs.load(), 0);

  // The default allocator refuses zero bytes and an impossible size clearly.
  AllocCountingCopier plain;
  EXPECT_EQ(plain.DeviceCopier::alloc_host(0).status().code(), StatusCode::kInvalidArgument);
  auto huge = plain.DeviceCopier::alloc_host(size_t{1} << 62);
  EXPECT_EQ(huge.status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(plain.pins_host());
}

}  // namespace
}  // namespace baton

// StagingPool: host staging buffers for the tcp transport's device-KV path,
// kept across transfers. A transfer takes a pair (the two buffers of
// run_staged's double buffering), uses it and gives it back when its Lease
// dies; the next transfer reuses it, so no transfer allocates, zero-fills or
// page-faults staging memory after the first.
//
// Buffers come from the region's DeviceCopier (alloc_host): page-locked when
// the copier can pin (CUDA), plain aligned heap memory otherwise; a pinned
// allocation that fails falls back to heap memory (logged once).
//
// Bound: at most max_pairs pairs exist. A transfer that finds none idle and
// the bound reached WAITS for one to come back (until its deadline or
// cancellation: DEADLINE_EXCEEDED / ABORTED), so staging memory (pinned
// memory is a scarce, unswappable resource) never exceeds
// 2 * max_pairs * buffer size. Pairs are allocated lazily, as concurrency
// asks for them, and never shrink until the pool dies.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "kv_transfer/kv_region.h"
#include "kv_transfer/transport.h"

namespace baton {

struct StagingPoolStats {
  int num_pairs = 0;                  // pairs that exist now
  int num_idle = 0;                   // of which idle
  uint64_t num_allocations = 0;       // pairs ever allocated (a resize counts)
  uint64_t num_reuses = 0;            // leases served by an existing pair
  uint64_t num_waits = 0;             // leases that had to wait for a pair
  uint64_t num_pinned_fallbacks = 0;  // buffers that fell back to heap memory
};

class StagingPool {
  struct Pair;

 public:
  // `copier` (not owned, must outlive the pool) allocates the buffers; each
  // buffer holds at least `buffer_bytes`; at most `max_pairs` (>= 1) pairs.
  StagingPool(DeviceCopier* copier, size_t buffer_bytes, int max_pairs);
  // Frees every buffer; a lease must not outlive its pool (checked).
  ~StagingPool();
  StagingPool(const StagingPool&) = delete;
  StagingPool& operator=(const StagingPool&) = delete;

  // One pair of buffers, given back to the pool when the lease dies.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept { *this = std::move(other); }
    Lease& operator=(Lease&& other) noexcept;
    ~Lease() { reset(); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    std::array<uint8_t*, 2> buffers() const;  // {nullptr, nullptr} when none is held
    size_t buffer_bytes() const;              // capacity of each buffer
    bool valid() const { return pair_ != nullptr; }
    void reset();  // gives the pair back now

   private:
    friend class StagingPool;
    Lease(StagingPool* pool, Pair* pair) : pool_(pool), pair_(pair) {}
    StagingPool* pool_ = nullptr;
    Pair* pair_ = nullptr;
  };

  // A pair whose buffers each hold at least `num_bytes` (> 0): an idle one
  // if it fits, else a new one while fewer than max_pairs exist (an idle pair
  // too small is replaced), else waits for one to come back.
  Result<Lease> acquire(size_t num_bytes, const ReadContext& ctx);
  // The same without waiting: RESOURCE_EXHAUSTED when acquire() would wait.
  Result<Lease> try_acquire(size_t num_bytes);

  size_t buffer_bytes() const { return buffer_bytes_; }
  int max_pairs() const { return max_pairs_; }
  StagingPoolStats stats() const;

 private:
  struct Pair {
    std::array<uint8_t*, 2> buffers = {nullptr, nullptr};
    std::array<bool, 2> from_copier = {false, false};  // false: the heap fallback
    size_t num_bytes = 0;
  };

  Result<Lease> acquire_impl(size_t num_bytes, const ReadContext* wait_ctx);  // null: never wait
  Result<std::unique_ptr<Pair>> allocate_pair(size_t num_bytes);              // without mu_
  void free_pair(Pair& pair);
  void release(Pair* pair);

  DeviceCopier* copier_;
  std::atomic<bool> warned_fallback_{false};
  size_t buffer_bytes_;
  int max_pairs_;
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Pair>> pairs_;
  std::vector<Pair*> idle_;  // most recently returned last
  int num_reserved_ = 0;     // pairs being allocated outside mu_ (count against the bound)
  StagingPoolStats stats_;
};

}  // namespace baton

#include "kv_transfer/staging_pool.h"

#include <algorithm>
#include <chrono>

#include "common/check.h"
#include "common/log.h"

namespace baton {

namespace {
// How often a waiting acquire looks at its cancellation flag.
constexpr auto kWaitSlice = std::chrono::milliseconds(20);
}  // namespace

StagingPool::Lease& StagingPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    reset();
    pool_ = other.pool_;
    pair_ = other.pair_;
    other.pool_ = nullptr;
    other.pair_ = nullptr;
  }
  return *this;
}

std::array<uint8_t*, 2> StagingPool::Lease::buffers() const {
  if (pair_ == nullptr) return {nullptr, nullptr};
  return pair_->buffers;
}

size_t StagingPool::Lease::buffer_bytes() const { return pair_ == nullptr ? 0 : pair_->num_bytes; }

void StagingPool::Lease::reset() {
  if (pair_ != nullptr) pool_->release(pair_);
  pool_ = nullptr;
  pair_ = nullptr;
}

StagingPool::StagingPool(DeviceCopier* copier, size_t buffer_bytes, int max_pairs)
    : copier_(copier), buffer_bytes_(buffer_bytes), max_pairs_(max_pairs) {
  BATON_CHECK(copier_ != nullptr, "staging pool: no copier");
  BATON_CHECK(buffer_bytes_ > 0 && max_pairs_ >= 1, "staging pool: buffer_bytes {} max_pairs {}", buffer_bytes_,
              max_pairs_);
}

StagingPool::~StagingPool() {
  std::lock_guard<std::mutex> lock(mu_);
  BATON_CHECK(idle_.size() == pairs_.size() && num_reserved_ == 0,
              "staging pool destroyed with {} of its {} pairs still leased",
              pairs_.size() + num_reserved_ - idle_.size(), pairs_.size() + num_reserved_);
  for (auto& pair : pairs_) free_pair(*pair);
}

StagingPoolStats StagingPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  StagingPoolStats s = stats_;
  s.num_pairs = static_cast<int>(pairs_.size());
  s.num_idle = static_cast<int>(idle_.size());
  return s;
}

Result<std::unique_ptr<StagingPool::Pair>> StagingPool::allocate_pair(size_t num_bytes) {
  auto pair = std::make_unique<Pair>();
  pair->num_bytes = num_bytes;
  for (int i = 0; i < 2; ++i) {
    Result<void*> mem = copier_->alloc_host(num_bytes);
    pair->from_copier[i] = mem.is_ok();
    if (!mem.is_ok()) {
      if (!warned_fallback_.exchange(true)) {
        BATON_LOG_WARN("KV staging: {}; using unpinned host memory", mem.status().to_string());
      }
      mem = copier_->DeviceCopier::alloc_host(num_bytes);
    }
    if (!mem.is_ok()) {
      free_pair(*pair);
      return mem.status().with_context("allocating a KV staging buffer");
    }
    pair->buffers[i] = static_cast<uint8_t*>(*mem);
  }
  return pair;
}

void StagingPool::free_pair(Pair& pair) {
  for (int i = 0; i < 2; ++i) {
    if (pair.buffers[i] == nullptr) continue;
    if (pair.from_copier[i]) {
      copier_->free_host(pair.buffers[i]);
    } else {
      copier_->DeviceCopier::free_host(pair.buffers[i]);
    }
    pair.buffers[i] = nullptr;
  }
}

void StagingPool::release(Pair* pair) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(pair);
  }
  cv_.notify_one();
}

Result<StagingPool::Lease> StagingPool::acquire(size_t num_bytes, const ReadContext& ctx) {
  return acquire_impl(num_bytes, &ctx);
}

Result<StagingPool::Lease> StagingPool::try_acquire(size_t num_bytes) { return acquire_impl(num_bytes, nullptr); }

Result<StagingPool::Lease> StagingPool::acquire_impl(size_t num_bytes, const ReadContext* wait_ctx) {
  if (num_bytes == 0) return invalid_argument("staging pool: a lease of zero bytes");
  std::unique_lock<std::mutex> lock(mu_);
  bool waited = false;
  for (;;) {
    // The most recently returned pair that fits (its pages are the warmest).
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
      if ((*it)->num_bytes >= num_bytes) {
        Pair* pair = *it;
        idle_.erase(std::next(it).base());
        ++stats_.num_reuses;
        return Lease(this, pair);
      }
    }
    const int num_existing = static_cast<int>(pairs_.size()) + num_reserved_;
    std::unique_ptr<Pair> too_small;  // an idle pair replaced by a larger one at the bound
    if (num_existing >= max_pairs_ && !idle_.empty()) {
      Pair* victim = idle_.front();
      idle_.erase(idle_.begin());
      auto it = std::find_if(pairs_.begin(), pairs_.end(), [&](const auto& p) { return p.get() == victim; });
      BATON_CHECK(it != pairs_.end(), "staging pool: idle pair not owned");
      too_small = std::move(*it);
      pairs_.erase(it);
    }
    if (num_existing < max_pairs_ || too_small != nullptr) {
      ++num_reserved_;
      lock.unlock();
      if (too_small != nullptr) free_pair(*too_small);
      auto made = allocate_pair(std::max(num_bytes, buffer_bytes_));
      lock.lock();
      --num_reserved_;
      if (!made.is_ok()) {
        cv_.notify_one();  // the slot is free again
        return made.status();
      }
      Pair* pair = made->get();
      pairs_.push_back(std::move(made).value());
      ++stats_.num_allocations;
      stats_.num_pinned_fallbacks += (pair->from_copier[0] ? 0 : 1) + (pair->from_copier[1] ? 0 : 1);
      return Lease(this, pair);
    }
    if (wait_ctx == nullptr) {
      return resource_exhausted("all {} KV staging pairs are in use", max_pairs_);
    }
    const ReadContext& ctx = *wait_ctx;
    if (ctx.is_cancelled()) return aborted("KV transfer cancelled while waiting for a staging buffer");
    if (ctx.expired()) {
      return deadline_exceeded("KV transfer timed out waiting for a staging buffer (all {} pairs in use)", max_pairs_);
    }
    if (!waited) {
      waited = true;
      ++stats_.num_waits;
    }
    cv_.wait_until(lock, std::min(ctx.deadline, SteadyClock::now() + kWaitSlice));
  }
}

}  // namespace baton

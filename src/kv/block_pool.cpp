#include "kv/block_pool.h"

#include "common/check.h"

namespace baton {

FreeBlockQueue::FreeBlockQueue() {
  head_.next_free = &tail_;
  tail_.prev_free = &head_;
  head_.block_id = tail_.block_id = -1;
}

KvBlock* FreeBlockQueue::pop_front() {
  if (size_ == 0) return nullptr;
  KvBlock* b = head_.next_free;
  remove(b);
  return b;
}

void FreeBlockQueue::push_back(KvBlock* block) {
  BATON_CHECK(block->prev_free == nullptr && block->next_free == nullptr, "block {} is already free", block->block_id);
  block->prev_free = tail_.prev_free;
  block->next_free = &tail_;
  tail_.prev_free->next_free = block;
  tail_.prev_free = block;
  ++size_;
}

void FreeBlockQueue::remove(KvBlock* block) {
  BATON_CHECK(block->prev_free != nullptr && block->next_free != nullptr, "block {} is not in the free queue",
              block->block_id);
  block->prev_free->next_free = block->next_free;
  block->next_free->prev_free = block->prev_free;
  block->prev_free = block->next_free = nullptr;
  --size_;
}

std::vector<int> FreeBlockQueue::ids() const {
  std::vector<int> out;
  out.reserve(static_cast<size_t>(size_));
  for (const KvBlock* b = head_.next_free; b != &tail_; b = b->next_free) out.push_back(b->block_id);
  return out;
}

BlockPool::BlockPool(int num_blocks, bool enable_caching)
    : blocks_(static_cast<size_t>(num_blocks)),
      cached_(enable_caching ? num_blocks : 1),
      enable_caching_(enable_caching) {
  BATON_CHECK(num_blocks > 0, "a block pool needs blocks, got {}", num_blocks);
  for (int i = 0; i < num_blocks; ++i) {
    blocks_[i].block_id = i;
    free_queue_.push_back(&blocks_[i]);
  }
}

int BlockPool::lookup(BlockHash hash) const {
  if (!enable_caching_) return -1;
  return cached_.find(hash);
}

void BlockPool::evict(KvBlock& block) {
  if (!block.has_hash) return;
  cached_.erase(block.hash, block.block_id);
  if (record_events_) events_.push_back({KvEvent::Kind::kRemoved, block.hash});
  block.has_hash = false;
  block.hash = 0;
}

void BlockPool::get_new_blocks(int n, std::vector<int>& out) {
  BATON_CHECK(n <= free_queue_.size(), "asked for {} blocks, {} free", n, free_queue_.size());
  for (int i = 0; i < n; ++i) {
    KvBlock* b = free_queue_.pop_front();
    if (b->has_hash) {
      --num_cached_free_;
      evict(*b);
    }
    BATON_CHECK_EQ(b->ref_cnt, 0);
    b->ref_cnt = 1;
    out.push_back(b->block_id);
  }
}

void BlockPool::touch(std::span<const int> block_ids) {
  for (int id : block_ids) {
    KvBlock& b = blocks_[id];
    if (b.ref_cnt == 0) {
      free_queue_.remove(&b);
      if (b.has_hash) --num_cached_free_;
    }
    ++b.ref_cnt;
  }
}

void BlockPool::release(int block_id) {
  KvBlock& b = blocks_[block_id];
  BATON_CHECK(b.ref_cnt > 0, "block {} freed twice", block_id);
  if (--b.ref_cnt == 0) {
    free_queue_.push_back(&b);
    if (b.has_hash) ++num_cached_free_;
  }
}

void BlockPool::free_blocks(std::span<const int> block_ids) {
  for (int id : block_ids) release(id);
}

void BlockPool::free_blocks_reversed(std::span<const int> block_ids) {
  for (auto it = block_ids.rbegin(); it != block_ids.rend(); ++it) release(*it);
}

void BlockPool::cache_block(int block_id, BlockHash hash) {
  if (!enable_caching_) return;
  KvBlock& b = blocks_[block_id];
  BATON_CHECK(b.ref_cnt > 0, "caching free block {}", block_id);
  if (b.has_hash) return;
  if (!cached_.insert(hash, block_id)) return;  // another block holds this prefix already
  b.has_hash = true;
  b.hash = hash;
  if (record_events_) events_.push_back({KvEvent::Kind::kStored, hash});
}

bool BlockPool::reset_prefix_cache() {
  if (free_queue_.size() != num_blocks()) return false;
  for (KvBlock& b : blocks_) {
    b.has_hash = false;
    b.hash = 0;
  }
  cached_.clear();
  num_cached_free_ = 0;
  if (record_events_) events_.push_back({KvEvent::Kind::kCleared, 0});
  return true;
}

std::vector<KvEvent> BlockPool::take_events() {
  std::vector<KvEvent> out;
  out.swap(events_);
  return out;
}

std::vector<BlockHash> BlockPool::cached_hashes() const {
  std::vector<BlockHash> out;
  for (const KvBlock& b : blocks_) {
    if (b.has_hash) out.push_back(b.hash);
  }
  return out;
}

}  // namespace baton

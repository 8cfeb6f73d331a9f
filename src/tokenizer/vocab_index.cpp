#include "tokenizer/vocab_index.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>

namespace baton::tokenizer {

void VocabIndex::reset(size_t max_entries) {
  // At most half full: probe sequences stay short.
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, max_entries * 2));
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  size_ = 0;
}

std::pair<uint64_t, uint32_t> VocabIndex::locate(std::string_view bytes) const {
  const uint64_t h = XXH3_64bits(bytes.data(), bytes.size());
  return {h & mask_, static_cast<uint32_t>(h >> 32)};
}

void VocabIndex::grow(const std::vector<std::string>& vocab) {
  std::vector<Slot> old = std::move(slots_);
  reset(std::max<size_t>(16, old.size()));
  for (const Slot& s : old) {
    if (s.id >= 0) insert(s.id, vocab);
  }
}

bool VocabIndex::insert(int32_t id, const std::vector<std::string>& vocab) {
  if ((size_ + 1) * 2 > slots_.size()) grow(vocab);
  const std::string& bytes = vocab[static_cast<size_t>(id)];
  auto [slot, tag] = locate(bytes);
  for (;; slot = (slot + 1) & mask_) {
    Slot& s = slots_[slot];
    if (s.id < 0) {
      s = {tag, id};
      ++size_;
      return true;
    }
    if (s.tag == tag && vocab[static_cast<size_t>(s.id)] == bytes) return false;
  }
}

std::optional<int32_t> VocabIndex::find(std::string_view bytes, const std::vector<std::string>& vocab) const {
  if (slots_.empty()) return std::nullopt;
  auto [slot, tag] = locate(bytes);
  for (;; slot = (slot + 1) & mask_) {
    const Slot& s = slots_[slot];
    if (s.id < 0) return std::nullopt;
    if (s.tag == tag && vocab[static_cast<size_t>(s.id)] == bytes) return s.id;
  }
}

}  // namespace baton::tokenizer

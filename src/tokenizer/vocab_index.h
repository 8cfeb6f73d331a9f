// An index from a token's bytes to its id, over a vocabulary the caller keeps
// (its id -> bytes table): open addressing over (hash tag, id) slots, with no
// copy of the keys. A Qwen3 vocabulary (151k tokens, 151k merges) looked up
// through std::unordered_map<std::string, int> spent about a third of the
// tokenizer's load in node lookups; this is what replaced it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace baton::tokenizer {

class VocabIndex {
 public:
  // Empties the index and sizes it for up to `max_entries` ids.
  void reset(size_t max_entries);
  // Indexes `id` under vocab[id] unless those bytes are indexed already (the
  // first id keeps them, as std::unordered_map::emplace does); true if added.
  bool insert(int32_t id, const std::vector<std::string>& vocab);
  std::optional<int32_t> find(std::string_view bytes, const std::vector<std::string>& vocab) const;

 private:
  struct Slot {
    uint32_t tag = 0;  // the hash's high half
    int32_t id = -1;   // -1: empty
  };
  // The first slot of `bytes`'s probe sequence and its tag.
  std::pair<uint64_t, uint32_t> locate(std::string_view bytes) const;
  // Twice the slots, every indexed id kept.
  void grow(const std::vector<std::string>& vocab);

  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace baton::tokenizer

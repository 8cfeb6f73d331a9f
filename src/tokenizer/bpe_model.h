// The BPE model of tokenizer.json ("model": {"type": "BPE"}): the vocabulary,
// the merges by rank, and the merge loop that turns one pre-token into ids,
// with a bounded word cache. Two alphabets:
//  - byte-level (the pre-tokenizer has a ByteLevel step): tokens are kept as
//    the raw bytes their spelling stands for; a word starts as its bytes;
//  - characters (SentencePiece-style): tokens are kept as spelled; a word
//    starts as its characters, a character outside the vocabulary becomes
//    its <0xXX> byte tokens (byte_fallback) or the unk token (fuse_unk
//    joins consecutive ones), as HF tokenizers does.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "tokenizer/vocab_index.h"

namespace baton::tokenizer {

// Hash for heterogeneous lookup of std::string keys by std::string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class BpeModel {
 public:
  // Builds the model from the "model" object of tokenizer.json (its options)
  // and the vocabulary and merges that parse_tokenizer_json pulled out of it.
  static Result<std::unique_ptr<BpeModel>> from_json(const Json& model,
                                                     std::vector<std::pair<std::string, int64_t>> vocab,
                                                     const std::vector<std::pair<std::string, std::string>>& merges,
                                                     bool byte_level);

  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one pre-token (raw bytes, or text in the character
  // alphabet).
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;

  bool byte_level() const { return byte_level_; }

  // Id of the token whose raw bytes (byte-level) or text (characters) is
  // `bytes`, if any.
  std::optional<int32_t> bytes_to_id(std::string_view bytes) const;
  // Id of a token given in its vocabulary spelling, if any.
  std::optional<int32_t> token_to_id(std::string_view token) const;

  // One past the largest id of the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_bytes_.size()); }
  bool has_id(int32_t id) const { return id >= 0 && id < id_limit() && has_token_[id]; }
  // Raw bytes (byte-level; the spelling otherwise) and vocabulary spelling
  // of an id (has_id(id) must hold).
  const std::string& id_bytes(int32_t id) const { return id_to_bytes_[id]; }
  std::string id_token(int32_t id) const;
  size_t num_merges() const { return num_merges_; }

 private:
  BpeModel() = default;

  struct MergeEntry {
    uint64_t key = kEmptyKey;  // (left id << 32) | right id
    int32_t rank = 0;
    int32_t new_id = 0;
  };
  static constexpr uint64_t kEmptyKey = ~0ull;

  Status add_merge(std::string_view left, std::string_view right, int32_t rank, std::string& buf);
  void insert_merge(uint64_t key, int32_t rank, int32_t new_id);
  const MergeEntry* find_merge(int32_t left, int32_t right) const;
  void encode_piece(std::string_view bytes, std::vector<int32_t>& out) const;
  void merge_word(std::string_view bytes, std::vector<int32_t>& out) const;
  void find_metaspace_boundaries(const std::vector<std::pair<std::string, std::string>>& merges);
  // The ids a word starts as, before merging; returns how many (<= size).
  size_t initial_symbols(std::string_view word, int32_t* ids) const;
  Status load_vocab(std::vector<std::pair<std::string, int64_t>> vocab);

  // Vocabulary, indexed by id. A token is kept as raw bytes; its spelling is
  // their byte-level form, except for the rare token whose spelling has a
  // character outside the byte-level table ("odd": kept and looked up as is).
  std::vector<std::string> id_to_bytes_;
  std::vector<uint8_t> has_token_;
  std::vector<uint8_t> is_odd_;
  VocabIndex bytes_to_id_;  // over id_to_bytes_
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> odd_tokens_;
  std::array<int32_t, 256> byte_ids_{};  // id of each single byte (byte-level)

  bool byte_level_ = true;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  int32_t unk_id_ = -1;                      // none
  std::array<int32_t, 256> fallback_ids_{};  // id of each <0xXX> token, or -1

  // Merges: open addressing over a power-of-two table.
  std::vector<MergeEntry> merge_table_;
  uint64_t merge_mask_ = 0;
  size_t num_merges_ = 0;

  bool ignore_merges_ = false;  // a pre-token that is a whole vocabulary entry skips merging

  // Characters alphabet without a pre-tokenizer (Llama-2): a whole text is
  // one word. When no merge can join a symbol ending in character c to one
  // starting with "▁" (checked on the merges at load), the word is cut before
  // each "▁" that follows such a c, which changes no result and lets the
  // pieces use the word cache. Off when any merge could cross.
  bool split_at_metaspace_ = false;
  std::vector<char32_t> crossing_chars_;  // sorted: the c for which a merge could cross

  // Word cache, sharded to keep lock contention low across request threads.
  static constexpr size_t kNumCacheShards = 16;
  static constexpr size_t kCacheEntriesPerShard = 4096;
  static constexpr size_t kMaxCachedWordBytes = 64;
  struct CacheShard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> words;
  };
  mutable std::array<CacheShard, kNumCacheShards> cache_;
};

}  // namespace baton::tokenizer

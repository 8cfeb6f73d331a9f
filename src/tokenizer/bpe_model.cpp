#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <bit>

#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace baton::tokenizer {

namespace {

uint64_t merge_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

uint64_t hash_key(uint64_t key) {
  key ^= key >> 29;
  key *= 0xBF58476D1CE4E5B9ull;
  key ^= key >> 32;
  return key;
}

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 ▁

bool is_null_or_empty_string(const Json& j, std::string_view key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() || (it->is_string() && it->get_ref<const std::string&>().empty());
}

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::from_json(const Json& model,
                                                      std::vector<std::pair<std::string, int64_t>> vocab,
                                                      const std::vector<std::pair<std::string, std::string>>& merges,
                                                      bool byte_level) {
  if (!model.is_object()) return invalid_argument("tokenizer.json: 'model' is not an object");
  auto type_it = model.find("type");
  if (type_it == model.end() || !type_it->is_string() || *type_it != "BPE") {
    return unimplemented("tokenizer.json: model type {} is not supported (only BPE)",
                         type_it == model.end() ? std::string("(missing)") : type_it->dump());
  }
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    return unimplemented("tokenizer.json: BPE dropout is not supported");
  }
  if (!is_null_or_empty_string(model, "continuing_subword_prefix") ||
      !is_null_or_empty_string(model, "end_of_word_suffix")) {
    return unimplemented("tokenizer.json: BPE continuing_subword_prefix/end_of_word_suffix are not supported");
  }
  auto vocab_it = model.find("vocab");
  if (vocab_it == model.end() || !vocab_it->is_object() || vocab.empty()) {
    return invalid_argument("tokenizer.json: model.vocab is missing, empty or not an object");
  }
  auto merges_it = model.find("merges");
  if (merges_it == model.end() || !merges_it->is_array()) {
    return invalid_argument("tokenizer.json: model.merges is missing or not an array");
  }

  std::unique_ptr<BpeModel> m(new BpeModel());
  auto flag = [&](const char* key) {
    auto it = model.find(key);
    return it != model.end() && it->is_boolean() && it->get<bool>();
  };
  m->ignore_merges_ = flag("ignore_merges");
  m->byte_fallback_ = flag("byte_fallback");
  m->fuse_unk_ = flag("fuse_unk");
  m->byte_level_ = byte_level;
  BATON_RETURN_IF_ERROR(m->load_vocab(std::move(vocab)));
  auto unk = model.find("unk_token");
  if (unk != model.end() && !unk->is_null()) {
    if (!unk->is_string()) return invalid_argument("tokenizer.json: model.unk_token is not a string");
    auto id = m->token_to_id(unk->get_ref<const std::string&>());
    if (!id) {
      return invalid_argument("tokenizer.json: model.unk_token '{}' is not in the vocabulary",
                              unk->get_ref<const std::string&>());
    }
    m->unk_id_ = *id;
  }

  // Merges.
  const size_t capacity = std::bit_ceil(std::max<size_t>(16, merges.size() * 2));
  m->merge_table_.assign(capacity, MergeEntry{});
  m->merge_mask_ = capacity - 1;
  std::string buf;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    BATON_RETURN_IF_ERROR(m->add_merge(merges[rank].first, merges[rank].second, static_cast<int32_t>(rank), buf));
  }
  if (!m->byte_level_ && !m->ignore_merges_) m->find_metaspace_boundaries(merges);
  return m;
}

void BpeModel::find_metaspace_boundaries(const std::vector<std::pair<std::string, std::string>>& merges) {
  crossing_chars_.clear();
  for (const auto& [left, right] : merges) {
    if (!right.starts_with(kMetaspace) || left.ends_with(kMetaspace) || left.empty()) continue;
    // A byte-fallback or unk symbol stands for characters its spelling does
    // not show: give up rather than reason about them.
    auto id = bytes_to_id(left);
    if (!id || *id == unk_id_ || std::find(fallback_ids_.begin(), fallback_ids_.end(), *id) != fallback_ids_.end()) {
      crossing_chars_.clear();
      split_at_metaspace_ = false;
      return;
    }
    size_t last = left.size() - 1;
    while (last > 0 && (static_cast<uint8_t>(left[last]) & 0xC0) == 0x80) --last;
    crossing_chars_.push_back(utf8_step(left, last).code_point);
  }
  std::sort(crossing_chars_.begin(), crossing_chars_.end());
  split_at_metaspace_ = true;
}

Status BpeModel::load_vocab(std::vector<std::pair<std::string, int64_t>> vocab) {
  int64_t max_id = -1;
  for (const auto& entry : vocab) max_id = std::max(max_id, entry.second);
  // Ids index a table: a few gaps are fine, a lone id of a billion is not.
  if (static_cast<uint64_t>(max_id) >= 16 * vocab.size() + 65536) {
    return invalid_argument("tokenizer.json: vocab id {} is far beyond the {} entries of the vocabulary", max_id,
                            vocab.size());
  }
  const size_t num_ids = static_cast<size_t>(max_id + 1);
  id_to_bytes_.resize(num_ids);
  has_token_.assign(num_ids, 0);
  is_odd_.assign(num_ids, 0);
  bytes_to_id_.reset(vocab.size());
  byte_ids_.fill(-1);
  fallback_ids_.fill(-1);
  for (auto& [token, id64] : vocab) {
    const auto id = static_cast<int32_t>(id64);
    if (has_token_[id]) return invalid_argument("tokenizer.json: vocab id {} is used twice", id);
    has_token_[id] = 1;
    if (!byte_level_) {
      id_to_bytes_[id] = std::move(token);
      bytes_to_id_.insert(id, id_to_bytes_);
    } else if (auto bytes = byte_level_to_bytes(token)) {
      if (bytes->size() == 1) byte_ids_[static_cast<uint8_t>((*bytes)[0])] = id;
      id_to_bytes_[id] = std::move(*bytes);
      bytes_to_id_.insert(id, id_to_bytes_);
    } else {
      // Not reachable by byte-level encoding; decodes to its own text, as
      // the HF ByteLevel decoder does.
      is_odd_[id] = 1;
      odd_tokens_.emplace(token, id);
      id_to_bytes_[id] = std::move(token);
    }
  }
  if (!byte_level_) {
    for (int b = 0; b < 256; ++b) fallback_ids_[b] = bytes_to_id(fmt::format("<0x{:02X}>", b)).value_or(-1);
    return Status::ok();
  }
  for (int b = 0; b < 256; ++b) {
    if (byte_ids_[b] < 0) {
      return unimplemented(
          "tokenizer.json: the vocabulary lacks the byte-level token of byte 0x{:02X}, "
          "which its ByteLevel pre-tokenizer needs",
          b);
    }
  }
  return Status::ok();
}

std::string BpeModel::id_token(int32_t id) const {
  return !byte_level_ || is_odd_[id] ? id_to_bytes_[id] : bytes_to_byte_level(id_to_bytes_[id]);
}

Status BpeModel::add_merge(std::string_view left, std::string_view right, int32_t rank, std::string& buf) {
  // Spellings -> ids, through the raw bytes (reusing buf for the conversion).
  auto lookup = [&](std::string_view spelling) -> std::optional<int32_t> {
    if (!byte_level_) return bytes_to_id(spelling);
    buf.clear();
    size_t i = 0;
    while (i < spelling.size()) {
      Utf8Step s = utf8_step(spelling, i);
      std::optional<uint8_t> b;
      if (s.kind == Utf8Step::Kind::kValid) b = unicode_to_byte(s.code_point);
      if (!b) return token_to_id(spelling);  // an odd spelling
      buf.push_back(static_cast<char>(*b));
      i += s.num_bytes;
    }
    return bytes_to_id(buf);
  };
  auto l = lookup(left);
  auto r = lookup(right);
  if (!l || !r) {
    return invalid_argument("tokenizer.json: merge {} ('{}' '{}') uses a token that is not in the vocabulary", rank,
                            left, right);
  }
  std::string merged;
  merged.reserve(left.size() + right.size());
  merged.append(left).append(right);
  auto n = lookup(merged);
  if (!n) {
    return invalid_argument("tokenizer.json: merge {} makes '{}', which is not in the vocabulary", rank, merged);
  }
  insert_merge(merge_key(*l, *r), rank, *n);
  return Status::ok();
}

void BpeModel::insert_merge(uint64_t key, int32_t rank, int32_t new_id) {
  for (uint64_t slot = hash_key(key) & merge_mask_;; slot = (slot + 1) & merge_mask_) {
    MergeEntry& e = merge_table_[slot];
    if (e.key == kEmptyKey) {
      e = {key, rank, new_id};
      ++num_merges_;
      return;
    }
    if (e.key == key) {  // a repeated pair: the later rank wins, as in HF tokenizers
      e.rank = rank;
      e.new_id = new_id;
      return;
    }
  }
}

const BpeModel::MergeEntry* BpeModel::find_merge(int32_t left, int32_t right) const {
  const uint64_t key = merge_key(left, right);
  for (uint64_t slot = hash_key(key) & merge_mask_;; slot = (slot + 1) & merge_mask_) {
    const MergeEntry& e = merge_table_[slot];
    if (e.key == key) return &e;
    if (e.key == kEmptyKey) return nullptr;
  }
}

std::optional<int32_t> BpeModel::bytes_to_id(std::string_view bytes) const {
  return bytes_to_id_.find(bytes, id_to_bytes_);
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  if (!byte_level_) return bytes_to_id(token);
  if (auto bytes = byte_level_to_bytes(token)) return bytes_to_id(*bytes);
  auto it = odd_tokens_.find(token);
  if (it == odd_tokens_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (!split_at_metaspace_) {
    encode_piece(bytes, out);
    return;
  }
  size_t start = 0;
  for (size_t pos = bytes.find(kMetaspace, 1); pos != std::string_view::npos;
       pos = bytes.find(kMetaspace, pos + kMetaspace.size())) {
    size_t prev = pos - 1;
    while (prev > start && (static_cast<uint8_t>(bytes[prev]) & 0xC0) == 0x80) --prev;
    const char32_t c = utf8_step(bytes, prev).code_point;
    if (c == 0x2581 || std::binary_search(crossing_chars_.begin(), crossing_chars_.end(), c)) continue;
    encode_piece(bytes.substr(start, pos - start), out);
    start = pos;
  }
  encode_piece(bytes.substr(start), out);
}

void BpeModel::encode_piece(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  if (bytes.size() == 1 && byte_level_) {
    out.push_back(byte_ids_[static_cast<uint8_t>(bytes[0])]);
    return;
  }
  // A whole-word vocabulary hit (ignore_merges) or the merge result; the
  // cache sits in front of both, since it is small and hot where the
  // vocabulary table is large and cold.
  auto compute = [&](std::vector<int32_t>& ids) {
    if (ignore_merges_) {
      if (auto id = bytes_to_id(bytes)) {
        ids.push_back(*id);
        return;
      }
    }
    merge_word(bytes, ids);
  };
  if (bytes.size() > kMaxCachedWordBytes) {
    compute(out);
    return;
  }
  const size_t h = StringHash{}(bytes);
  CacheShard& shard = cache_[(h >> 7) % kNumCacheShards];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.words.find(bytes);
    if (it != shard.words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out.size();
  compute(out);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.words.size() >= kCacheEntriesPerShard) shard.words.clear();
  shard.words.emplace(std::string(bytes),
                      std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
}

size_t BpeModel::initial_symbols(std::string_view word, int32_t* ids) const {
  size_t n = 0;
  if (byte_level_) {
    for (char c : word) ids[n++] = byte_ids_[static_cast<uint8_t>(c)];
    return n;
  }
  bool pending_unk = false;  // HF adds an unk once the next known character (or the end) comes
  for (size_t i = 0; i < word.size();) {
    const size_t len = std::min(utf8_step(word, i).num_bytes, word.size() - i);
    const std::string_view ch = word.substr(i, len);
    i += len;
    if (auto id = bytes_to_id(ch)) {
      if (pending_unk) ids[n++] = unk_id_;
      pending_unk = false;
      ids[n++] = *id;
      continue;
    }
    if (byte_fallback_ &&
        std::all_of(ch.begin(), ch.end(), [&](char b) { return fallback_ids_[static_cast<uint8_t>(b)] >= 0; })) {
      for (char b : ch) ids[n++] = fallback_ids_[static_cast<uint8_t>(b)];
      continue;
    }
    if (unk_id_ < 0) continue;  // no unk token: the character is dropped
    if (pending_unk && !fuse_unk_) ids[n++] = unk_id_;
    pending_unk = true;
  }
  if (pending_unk) ids[n++] = unk_id_;
  return n;
}

void BpeModel::merge_word(std::string_view bytes, std::vector<int32_t>& out) const {
  // Symbols form a linked list over the word's bytes; candidate merges sit in
  // a min-heap ordered by (rank, position), as in HF tokenizers. A candidate
  // is stale when either side has changed since it was pushed.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t left;
    int32_t right;
    int32_t new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const auto n = static_cast<int32_t>(bytes.size());
  // Each merge pushes at most two candidates, so 3n bounds the heap. Short
  // words (the usual case) live on the stack: no allocation per word.
  constexpr int32_t kStackSymbols = 64;
  Symbol stack_syms[kStackSymbols];
  Candidate stack_heap[3 * kStackSymbols];
  int32_t stack_ids[kStackSymbols];
  std::vector<Symbol> big_syms;
  std::vector<Candidate> big_heap;
  std::vector<int32_t> big_ids;
  Symbol* syms = stack_syms;     // [n]
  Candidate* heap = stack_heap;  // [<= 3n]
  int32_t* initial = stack_ids;  // [n]: the ids the word starts as
  if (n > kStackSymbols) {
    big_syms.resize(static_cast<size_t>(n));
    big_heap.resize(3 * static_cast<size_t>(n));
    big_ids.resize(static_cast<size_t>(n));
    syms = big_syms.data();
    heap = big_heap.data();
    initial = big_ids.data();
  }
  size_t heap_size = 0;
  const auto num_symbols = static_cast<int32_t>(initial_symbols(bytes, initial));
  for (int32_t i = 0; i < num_symbols; ++i) {
    syms[i] = {initial[i], i - 1, i + 1 < num_symbols ? i + 1 : -1};
  }
  if (num_symbols == 0) return;
  auto push = [&](int32_t pos) {
    const int32_t next = syms[pos].next;
    if (next < 0) return;
    if (const MergeEntry* e = find_merge(syms[pos].id, syms[next].id)) {
      heap[heap_size++] = {e->rank, pos, syms[pos].id, syms[next].id, e->new_id};
      std::push_heap(heap, heap + heap_size, std::greater<>{});
    }
  };
  for (int32_t i = 0; i + 1 < num_symbols; ++i) push(i);
  while (heap_size > 0) {
    std::pop_heap(heap, heap + heap_size, std::greater<>{});
    const Candidate c = heap[--heap_size];
    Symbol& left = syms[c.pos];
    if (left.id != c.left || left.next < 0) continue;
    Symbol& right = syms[left.next];
    if (right.id != c.right) continue;
    left.id = c.new_id;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = c.pos;
    right.id = -1;
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

}  // namespace baton::tokenizer

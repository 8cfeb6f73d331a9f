#include "router/kv_index.h"

#include <mutex>

namespace baton::router {

namespace {

Result<BlockHash> hash_of(const Json& j) {
  if (!j.is_number_unsigned()) {
    return invalid_argument("a block hash must be an unsigned integer, got {}", dump_json(j));
  }
  return j.get<uint64_t>();
}

// A string field, "" when absent or not a string (never throws).
std::string string_field(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<uint64_t> field_u64(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) {
    return invalid_argument("KV event '{}' needs a non-negative integer '{}'", string_field(j, "type"), key);
  }
  return it->get<uint64_t>();
}

}  // namespace

const std::vector<BlockHash>& PromptHashes::for_block_size(int block_size) const {
  auto [it, added] = by_block_size_.try_emplace(block_size);
  if (added && block_size > 0 && !token_ids_.empty()) {
    // As KvCacheManager::get_computed_blocks: the last token is always computed.
    const size_t num_blocks = (token_ids_.size() - 1) / static_cast<size_t>(block_size);
    extend_block_hashes(it->second, std::span<const int32_t>(token_ids_).first(num_blocks * block_size), block_size);
  }
  return it->second;
}

void KvIndex::drop(State& s) {
  s.synced = false;
  s.hashes.clear();
  s.load = {};
}

Status KvIndex::apply_snapshot(State& s, const Json& j) {
  BATON_ASSIGN_OR_RETURN(uint64_t epoch, field_u64(j, "epoch"));
  BATON_ASSIGN_OR_RETURN(uint64_t seq, field_u64(j, "seq"));
  BATON_ASSIGN_OR_RETURN(uint64_t block_size, field_u64(j, "block_size"));
  auto hashes = j.find("hashes");
  if (block_size == 0 || block_size > (1u << 20)) return invalid_argument("KV snapshot: bad block_size {}", block_size);
  if (hashes == j.end() || !hashes->is_array()) return invalid_argument("KV snapshot needs 'hashes' (an array)");
  std::unordered_set<BlockHash> set;
  set.reserve(hashes->size());
  for (const Json& h : *hashes) {
    BATON_ASSIGN_OR_RETURN(BlockHash v, hash_of(h));
    set.insert(v);
  }
  s.hashes = std::move(set);
  s.epoch = epoch;
  s.seq = seq;
  s.block_size = static_cast<int>(block_size);
  s.load = KvLoad::from_json(j.value("load", Json()));
  s.synced = true;
  ++s.num_snapshots;
  return Status::ok();
}

Status KvIndex::apply_batch(State& s, const Json& j) {
  BATON_ASSIGN_OR_RETURN(uint64_t epoch, field_u64(j, "epoch"));
  BATON_ASSIGN_OR_RETURN(uint64_t seq, field_u64(j, "seq"));
  if (!s.synced) return failed_precondition("KV events batch {} before any snapshot", seq);
  if (epoch != s.epoch || seq != s.seq + 1) {
    ++s.num_gaps;
    return failed_precondition("KV events: expected batch {} of epoch {}, got {} of epoch {}", s.seq + 1, s.epoch, seq,
                               epoch);
  }
  auto events = j.find("events");
  if (events == j.end() || !events->is_array()) return invalid_argument("KV events batch needs 'events' (an array)");
  for (const Json& e : *events) {
    const std::string type = e.is_object() ? string_field(e, "type") : std::string();
    if (type == "cleared") {
      s.hashes.clear();
      continue;
    }
    if (type != "stored" && type != "removed") return invalid_argument("unknown KV event type '{}'", type);
    auto hashes = e.find("hashes");
    if (hashes == e.end() || !hashes->is_array()) return invalid_argument("KV event '{}' needs 'hashes'", type);
    for (const Json& h : *hashes) {
      BATON_ASSIGN_OR_RETURN(BlockHash v, hash_of(h));
      if (type == "stored") {
        s.hashes.insert(v);
      } else {
        s.hashes.erase(v);
      }
    }
  }
  s.seq = seq;
  s.load = KvLoad::from_json(j.value("load", Json()));
  ++s.num_batches;
  return Status::ok();
}

Status KvIndex::apply(const std::string& url, std::string_view data) {
  Result<Json> parsed = parse_json(data, "KV event");
  std::unique_lock<std::shared_mutex> lock(mu_);
  State& s = states_[url];
  Status st = parsed.status();
  if (st.is_ok() && !parsed->is_object()) st = invalid_argument("a KV event must be a JSON object");
  if (st.is_ok()) {
    const std::string type = string_field(*parsed, "type");
    if (type == "snapshot") {
      st = apply_snapshot(s, *parsed);
    } else if (type == "events") {
      st = apply_batch(s, *parsed);
    } else {
      st = invalid_argument("unknown KV stream event type '{}'", type);
    }
  }
  if (!st.is_ok()) drop(s);
  return st;
}

void KvIndex::forget(const std::string& url) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = states_.find(url);
  if (it != states_.end()) drop(it->second);
}

KvView KvIndex::view(const std::string& url, const PromptHashes& prompt) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  KvView v;
  auto it = states_.find(url);
  if (it == states_.end() || !it->second.synced) return v;
  const State& s = it->second;
  v.synced = true;
  v.block_size = s.block_size;
  v.load = s.load;
  if (!prompt.known()) return v;
  for (BlockHash h : prompt.for_block_size(s.block_size)) {
    if (!s.hashes.count(h)) break;
    ++v.overlap_blocks;
  }
  return v;
}

std::vector<KvIndexEntry> KvIndex::entries() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<KvIndexEntry> out;
  for (const auto& [url, s] : states_) {
    out.push_back({url, s.synced, s.hashes.size(), s.seq, s.num_snapshots, s.num_gaps, s.num_batches});
  }
  return out;
}

}  // namespace baton::router

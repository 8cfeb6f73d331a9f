#include "kv/kv_event_publisher.h"

#include <cmath>
#include <random>

namespace baton {

const char* kv_event_kind_name(KvEvent::Kind kind) {
  switch (kind) {
    case KvEvent::Kind::kStored: return "stored";
    case KvEvent::Kind::kRemoved: return "removed";
    case KvEvent::Kind::kCleared: return "cleared";
  }
  return "?";
}

Json KvLoad::to_json() const {
  return Json{{"num_waiting", num_waiting},
              {"num_running", num_running},
              {"kv_usage", kv_usage},
              {"waiting_prompt_tokens", waiting_prompt_tokens},
              {"prefill_tokens_per_s", prefill_tokens_per_s}};
}

KvLoad KvLoad::from_json(const Json& j) {
  KvLoad l;
  if (!j.is_object()) return l;
  auto num = [&](const char* key, auto& out) {
    auto it = j.find(key);
    if (it != j.end() && it->is_number()) out = it->get<std::decay_t<decltype(out)>>();
  };
  num("num_waiting", l.num_waiting);
  num("num_running", l.num_running);
  num("kv_usage", l.kv_usage);
  num("waiting_prompt_tokens", l.waiting_prompt_tokens);
  num("prefill_tokens_per_s", l.prefill_tokens_per_s);
  return l;
}

KvEventPublisher::KvEventPublisher(int block_size)
    : block_size_(block_size), epoch_(std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32)) {}

bool KvEventPublisher::load_moved(const KvLoad& load) const {
  return load.num_waiting != last_load_.num_waiting || load.num_running != last_load_.num_running ||
         std::abs(load.kv_usage - last_load_.kv_usage) >= 0.01 ||
         load.waiting_prompt_tokens != last_load_.waiting_prompt_tokens;
}

bool KvEventPublisher::publish(const std::vector<KvEvent>& events, const KvLoad& load) {
  std::lock_guard<std::mutex> lock(mu_);
  if (events.empty() && !load_moved(load)) return false;
  last_load_ = load;
  ++seq_;
  // Runs of one kind become one entry: {"type":"stored","hashes":[...]}.
  Json entries = Json::array();
  for (const KvEvent& e : events) {
    switch (e.kind) {
      case KvEvent::Kind::kStored: cached_.insert(e.hash); break;
      case KvEvent::Kind::kRemoved: cached_.erase(e.hash); break;
      case KvEvent::Kind::kCleared: cached_.clear(); break;
    }
    const char* kind = kv_event_kind_name(e.kind);
    if (entries.empty() || entries.back()["type"] != kind || e.kind == KvEvent::Kind::kCleared) {
      entries.push_back(Json{{"type", kind}});
      if (e.kind != KvEvent::Kind::kCleared) entries.back()["hashes"] = Json::array();
    }
    if (e.kind != KvEvent::Kind::kCleared) entries.back()["hashes"].push_back(e.hash);
  }
  auto text = std::make_shared<const std::string>(dump_json(Json{
      {"type", "events"}, {"epoch", epoch_}, {"seq", seq_}, {"events", std::move(entries)}, {"load", load.to_json()}}));
  for (auto& [id, sink] : sinks_) sink(text);
  return true;
}

std::pair<uint64_t, std::string> KvEventPublisher::subscribe(Sink sink) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_sink_id_++;
  sinks_.emplace(id, std::move(sink));
  Json hashes = Json::array();
  for (BlockHash h : cached_) hashes.push_back(h);
  std::string snapshot = dump_json(Json{{"type", "snapshot"},
                                        {"epoch", epoch_},
                                        {"seq", seq_},
                                        {"block_size", block_size_},
                                        {"hashes", std::move(hashes)},
                                        {"load", last_load_.to_json()}});
  return {id, std::move(snapshot)};
}

void KvEventPublisher::unsubscribe(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  sinks_.erase(id);
}

uint64_t KvEventPublisher::seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seq_;
}

size_t KvEventPublisher::num_cached_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_.size();
}

int KvEventPublisher::num_subscribers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(sinks_.size());
}

}  // namespace baton

#include "planner/cluster_sim.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <queue>
#include <unordered_map>

#include <xxhash.h>

namespace baton::planner {

namespace {

// kArrival: a request reaches the router. kDeliver: the router hands it to
// an instance (one hop later). kStepEnd: an instance's step ends.
// kLoadDone: a decode instance's KV pull ends. kDecodeHandoff: a PD request's
// prefill answered and the router picks its decode instance (one hop later).
enum class EventKind { kArrival, kDeliver, kStepEnd, kLoadDone, kDecodeHandoff };

struct Event {
  double time_s = 0;
  uint64_t seq = 0;  // ties: in the order posted
  EventKind kind = EventKind::kArrival;
  int instance = -1;
  uint64_t key = 0;  // request index in the workload
  bool operator>(const Event& o) const { return time_s != o.time_s ? time_s > o.time_s : seq > o.seq; }
};

class ClusterSim {
 public:
  ClusterSim(const DeploymentSpec& d, const bench::Workload& w, const StepTimeModel& model,
             const TransferModel& transfer, const SimOptions& options)
      : d_(d), w_(w), model_(model), transfer_(transfer), options_(options) {
    auto add = [&](int n, SimInstanceOptions o, SimRole role, std::vector<int>& ids) {
      o.role = role;
      for (int i = 0; i < n; ++i) {
        ids.push_back(static_cast<int>(instances_.size()));
        instances_.push_back(std::make_unique<SimInstance>(o, &model_));
      }
    };
    add(d.num_agg, d.agg, SimRole::kAgg, front_);
    add(d.num_prefill, d.prefill, SimRole::kPrefill, front_);
    add(d.num_decode, d.decode, SimRole::kDecode, decode_);
    for (size_t i = 0; i < instances_.size(); ++i) {
      const bool decode = i >= front_.size();
      const std::vector<std::string>& urls = decode ? d.decode_urls : d.front_urls;
      const size_t k = decode ? i - front_.size() : i;
      urls_.push_back(k < urls.size() ? urls[k] : "http://instance-" + std::to_string(i));
    }
    kicked_.assign(instances_.size(), false);
    if (options.first_use != nullptr && options.warmth != nullptr) {
      if (options.warmth->size() < instances_.size()) options.warmth->resize(instances_.size());
      for (size_t i = 0; i < instances_.size(); ++i)
        instances_[i]->set_warmth(options.first_use, &(*options.warmth)[i]);
    }
    records_.resize(w.requests.size());
    const std::vector<bool> warm = bench::warmup_flags(w, options.num_warmup, options.warmup_s);
    for (size_t i = 0; i < w.requests.size(); ++i) {
      records_[i].warmup = warm[i];
      records_[i].index = static_cast<int64_t>(i);
      records_[i].session = w.requests[i].session;
      records_[i].turn = w.requests[i].turn;
      records_[i].prompt_tokens = w.requests[i].prompt_tokens;
      records_[i].expected_output_tokens = w.requests[i].output_tokens;
      records_[i].usage_reported = true;
      if (w.requests[i].turn == 0) post(w.requests[i].arrival_s, EventKind::kArrival, -1, i);
    }
  }

  SimResult run() {
    double first = std::numeric_limits<double>::infinity(), last = 0;
    while (!events_.empty()) {
      const Event e = events_.top();
      events_.pop();
      now_ = e.time_s;
      switch (e.kind) {
        case EventKind::kArrival: on_arrival(e.key); break;
        case EventKind::kDeliver: on_deliver(e.instance, e.key); break;
        case EventKind::kStepEnd: on_step_end(e.instance); break;
        case EventKind::kLoadDone: on_load_done(e.instance, e.key); break;
        case EventKind::kDecodeHandoff: on_decode_handoff(e.key); break;
      }
      // Instances start their next step once every event of this instant
      // is in: requests that arrive together are scheduled together.
      if (events_.empty() || events_.top().time_s > now_) start_kicked_steps();
    }
    SimResult out;
    for (const bench::RequestRecord& r : records_) {
      if (r.end_s < 0) continue;
      first = std::min(first, r.send_s);
      last = std::max(last, r.end_s);
    }
    out.duration_s = last > first ? last - first : 0;
    for (const auto& inst : instances_) {
      out.instances.push_back({sim_role_name(inst->role()), inst->num_steps(), inst->num_preemptions(),
                               out.duration_s > 0 ? inst->busy_s() / out.duration_s : 0});
    }
    out.records = std::move(records_);
    return out;
  }

 private:
  void post(double t, EventKind kind, int instance, uint64_t key) {
    events_.push(Event{t, next_seq_++, kind, instance, key});
  }

  int pick(const std::vector<int>& ids, size_t& cursor, uint64_t key) {
    if (d_.policy == SimPolicy::kRoundRobin) return ids[cursor++ % ids.size()];
    int least = ids.front();
    for (int id : ids) {
      if (instances_[id]->num_requests() < instances_[least]->num_requests()) least = id;
    }
    const std::vector<bench::Segment>& prompt = w_.requests[key].prompt;
    if (d_.policy == SimPolicy::kLeastLoaded || prompt.empty()) return least;
    constexpr int kLoadSlack = 8;  // the router's
    const int limit = 2 * instances_[least]->num_requests() + kLoadSlack;
    auto hashed = key_hash_.find(key);
    if (hashed == key_hash_.end()) {
      hashed = key_hash_
                   .emplace(key, routing_key_hash(routing_key(prompt, options_.vocab_size, options_.prompt_format)))
                   .first;
    }
    int best = -1;
    uint64_t best_score = 0;
    for (int id : ids) {
      if (instances_[id]->num_requests() > limit) continue;
      const uint64_t score = rendezvous_score(hashed->second, urls_[static_cast<size_t>(id)]);
      if (best < 0 || score > best_score) {
        best = id;
        best_score = score;
      }
    }
    return best < 0 ? least : best;
  }

  void on_arrival(uint64_t key) {
    bench::RequestRecord& rec = records_[key];
    rec.scheduled_s = rec.ready_s = rec.send_s = now_;
    const int inst = pick(front_, front_cursor_, key);
    if (d_.is_pd()) prefill_of_[key] = inst;
    post(now_ + d_.router_hop_s, EventKind::kDeliver, inst, key);
  }

  void on_deliver(int inst, uint64_t key) {
    const bench::RequestSpec& spec = w_.requests[key];
    instances_[inst]->add(key, bench::materialize_ids(spec.prompt, options_.vocab_size),
                          static_cast<int>(spec.output_tokens), /*remote_kv=*/false);
    kick(inst);
  }

  void on_decode_handoff(uint64_t key) {
    const bench::RequestSpec& spec = w_.requests[key];
    const int inst = pick(decode_, decode_cursor_, key);
    instances_[inst]->add(key, bench::materialize_ids(spec.prompt, options_.vocab_size),
                          static_cast<int>(spec.output_tokens), /*remote_kv=*/true);
    kick(inst);
  }

  void on_load_done(int inst, uint64_t key) {
    instances_[inst]->finish_load(key);
    auto it = prefill_of_.find(key);
    if (it != prefill_of_.end()) {
      instances_[it->second]->release_lease(key);
      kick(it->second);  // freed blocks may admit waiting requests
      prefill_of_.erase(it);
    }
    kick(inst);
  }

  void on_step_end(int id) {
    SimInstance& inst = *instances_[id];
    const SimStepEvents ev = inst.end_step();
    for (const SimStepEvents::Token& t : ev.tokens) on_token(inst, t);
    kick(id);
  }

  void on_token(SimInstance& inst, const SimStepEvents::Token& t) {
    bench::RequestRecord& rec = records_[t.key];
    if (inst.role() == SimRole::kPrefill) {
      if (t.finished) post(now_ + d_.router_hop_s, EventKind::kDecodeHandoff, -1, t.key);
      return;
    }
    if (rec.first_token_s < 0) rec.first_token_s = now_;
    if (options_.record_chunks) rec.chunk_s.push_back(now_);
    ++rec.output_tokens;
    if (!t.finished) return;
    rec.end_s = now_;
    rec.ok = true;
    const bench::RequestSpec& spec = w_.requests[t.key];
    if (spec.next_turn >= 0) {
      post(now_ + w_.requests[spec.next_turn].think_time_s, EventKind::kArrival, -1,
           static_cast<uint64_t>(spec.next_turn));
    }
  }

  // An instance with something new to do starts a step (if idle) at the
  // end of the current instant.
  void kick(int id) {
    if (kicked_[id]) return;
    kicked_[id] = true;
    kicked_ids_.push_back(id);
  }

  void start_kicked_steps() {
    std::vector<int> ids;
    ids.swap(kicked_ids_);
    for (int id : ids) {
      kicked_[id] = false;
      start_step(id);
    }
  }

  void start_step(int id) {
    SimInstance& inst = *instances_[id];
    if (inst.in_step()) return;
    std::vector<SimInstance::Load> loads;
    const std::optional<double> step = inst.begin_step(&loads);
    for (const SimInstance::Load& l : loads) {
      post(now_ + transfer_.seconds(l.num_tokens), EventKind::kLoadDone, id, l.key);
    }
    if (step) post(now_ + *step, EventKind::kStepEnd, id, 0);
  }

  const DeploymentSpec& d_;
  const bench::Workload& w_;
  const StepTimeModel& model_;
  const TransferModel& transfer_;
  const SimOptions& options_;
  std::vector<std::unique_ptr<SimInstance>> instances_;
  std::vector<int> front_;   // agg or prefill instances: where arrivals go
  std::vector<int> decode_;  // PD decode instances
  size_t front_cursor_ = 0, decode_cursor_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  uint64_t next_seq_ = 0;
  double now_ = 0;
  std::vector<bench::RequestRecord> records_;
  std::vector<bool> kicked_;  // per instance: a step start is pending this instant
  std::vector<int> kicked_ids_;
  std::unordered_map<uint64_t, int> prefill_of_;     // PD: the prefill instance holding the request's lease
  std::vector<std::string> urls_;                    // per instance: the router's URL of it
  std::unordered_map<uint64_t, uint64_t> key_hash_;  // per request: its routing key's hash (PD picks twice)
};

}  // namespace

std::string routing_key(const std::vector<bench::Segment>& prompt, int64_t vocab_size, bench::PromptFormat format) {
  constexpr size_t kKeyChars = 256;  // router/routing_policy.h prefix_key_of
  std::string text;
  if (format == bench::PromptFormat::kText) {
    text = bench::materialize_text(prompt);
  } else {
    // The ids as the router serialises the parsed array: "[1,2,3]". Only
    // the first ids can reach the key's length.
    std::vector<bench::Segment> head;
    int64_t need = kKeyChars / 2 + 1;  // every id takes at least 2 characters with its comma
    for (const bench::Segment& s : prompt) {
      if (need <= 0) break;
      head.push_back({s.key, std::min(s.num_tokens, need)});
      need -= head.back().num_tokens;
    }
    const std::vector<int32_t> ids = bench::materialize_ids(head, vocab_size);
    text = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i > 0) text += ',';
      text += std::to_string(ids[i]);
    }
    text += ']';
  }
  if (text.size() > kKeyChars) text.resize(kKeyChars);
  return text;
}

uint64_t routing_key_hash(const std::string& key) { return XXH3_64bits(key.data(), key.size()); }

uint64_t rendezvous_score(uint64_t key_hash, const std::string& url) {
  return XXH3_64bits_withSeed(url.data(), url.size(), key_hash);
}

double TransferModel::seconds(int64_t num_tokens) const {
  if (num_tokens <= 0) return latency_s;
  if (bytes_per_s <= 0) return latency_s;
  return latency_s + static_cast<double>(num_tokens * kv_bytes_per_token) / bytes_per_s;
}

Result<SimPolicy> parse_sim_policy(const std::string& name) {
  if (name == "round_robin") return SimPolicy::kRoundRobin;
  if (name == "least_loaded") return SimPolicy::kLeastLoaded;
  if (name == "prefix_aware") return SimPolicy::kPrefixAware;
  return invalid_argument("unknown routing policy '{}' (expected round_robin, least_loaded, prefix_aware)", name);
}

Status DeploymentSpec::validate() const {
  if (num_agg < 0 || num_prefill < 0 || num_decode < 0) return invalid_argument("instance counts must be >= 0");
  if (num_agg > 0 && (num_prefill > 0 || num_decode > 0)) {
    return invalid_argument("deployment '{}': agg replicas and PD instances in one deployment", name);
  }
  if (num_agg == 0 && (num_prefill == 0 || num_decode == 0)) {
    return invalid_argument("deployment '{}' needs agg replicas, or prefill and decode instances", name);
  }
  for (const SimInstanceOptions* o : {&agg, &prefill, &decode}) {
    if (o->num_kv_blocks < 1 || o->block_size < 1) {
      return invalid_argument("deployment '{}': every role needs KV blocks (num_kv_blocks {}, block_size {})", name,
                              o->num_kv_blocks, o->block_size);
    }
    if (o->scheduler.max_num_batched_tokens < 1 || o->scheduler.max_num_seqs < 1) {
      return invalid_argument("deployment '{}': max_num_batched_tokens and max_num_seqs must be >= 1", name);
    }
  }
  return Status::ok();
}

Json SimResult::to_json() const {
  Json inst = Json::array();
  for (const InstanceStats& s : instances) {
    inst.push_back({{"role", s.role},
                    {"num_steps", s.num_steps},
                    {"num_preemptions", s.num_preemptions},
                    {"busy_fraction", s.busy_fraction}});
  }
  return Json{{"duration_s", duration_s}, {"num_requests", records.size()}, {"instances", inst}};
}

Result<SimResult> simulate(const DeploymentSpec& deployment, const bench::Workload& workload,
                           const StepTimeModel& model, const TransferModel& transfer, const SimOptions& options) {
  BATON_RETURN_IF_ERROR(deployment.validate());
  // A request that can never fit an instance's KV would wait forever: refuse it up front.
  const SimInstanceOptions& first = deployment.is_pd() ? deployment.prefill : deployment.agg;
  for (const bench::RequestSpec& r : workload.requests) {
    for (const SimInstanceOptions* o : {&first, deployment.is_pd() ? &deployment.decode : &first}) {
      const int64_t need = (r.prompt_tokens + r.output_tokens + o->block_size - 1) / o->block_size;
      if (need > o->num_kv_blocks) {
        return invalid_argument("a request of {} prompt + {} output tokens needs {} KV blocks; an instance has {}",
                                r.prompt_tokens, r.output_tokens, need, o->num_kv_blocks);
      }
    }
  }
  ClusterSim sim(deployment, workload, model, transfer, options);
  return sim.run();
}

}  // namespace baton::planner

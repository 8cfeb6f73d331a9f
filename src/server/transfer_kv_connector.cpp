#include "server/transfer_kv_connector.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <signal.h>
#include <sys/mman.h>

#include "common/clock.h"
#include "common/log.h"
#include "kv_transfer/fault_transport.h"
#include "kv_transfer/transfer_params.h"
#include "kv_transfer/transport_registry.h"

namespace baton {

namespace {

constexpr int64_t kMinRenewIntervalMs = 10;
constexpr int64_t kMinLoadTimeoutMs = 10000;  // a pull's limit: the lease length, at least this
constexpr size_t kLeaseTokenBytes = 16;       // 128 random bits: unguessable

Result<FaultSpec> parse_fault(const std::string& text) {
  FaultSpec spec;
  if (text.rfind("delay_ms=", 0) == 0) {
    spec.kind = FaultKind::kDelay;
    try {
      spec.delay_ms = std::stoll(text.substr(9));
    } catch (const std::exception&) {
      return invalid_argument("--kv-fault: bad delay in '{}' (expected delay_ms=N)", text);
    }
    if (spec.delay_ms < 0) return invalid_argument("--kv-fault: negative delay in '{}'", text);
    return spec;
  }
  BATON_ASSIGN_OR_RETURN(spec.kind, parse_fault_kind(text));
  return spec;
}

// A prefill process killed with SIGKILL leaves its shared-memory mirror
// behind: remove mirrors ("/baton-kv-PID-NONCE-pdkv") whose process is gone.
void remove_stale_mirrors() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = entry.path().filename().string();
    int pid = 0;
    char nonce[40] = {0};
    if (std::sscanf(name.c_str(), "baton-kv-%d-%39[0-9a-f]-pdkv", &pid, nonce) != 2 || pid <= 0) continue;
    if (name.size() < 5 || name.compare(name.size() - 5, 5, "-pdkv") != 0) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (::shm_unlink(("/" + name).c_str()) == 0) BATON_LOG_INFO("removed stale KV mirror /dev/shm/{}", name);
  }
}

}  // namespace

Result<PdRole> parse_pd_role(const std::string& name) {
  if (name == "agg") return PdRole::kAgg;
  if (name == "prefill") return PdRole::kPrefill;
  if (name == "decode") return PdRole::kDecode;
  return invalid_argument("unknown --role '{}' (expected agg, prefill or decode)", name);
}

const char* pd_role_name(PdRole role) {
  switch (role) {
    case PdRole::kAgg: return "agg";
    case PdRole::kPrefill: return "prefill";
    case PdRole::kDecode: return "decode";
  }
  return "?";
}

Result<KvLoadFailurePolicy> parse_kv_load_failure_policy(const std::string& name) {
  if (name == "fail") return KvLoadFailurePolicy::kFail;
  if (name == "recompute") return KvLoadFailurePolicy::kRecompute;
  return invalid_argument("unknown --kv-load-failure-policy '{}' (expected fail or recompute)", name);
}

struct TransferKvConnector::Metrics {
  Gauge* blocks_pinned;
  Gauge* leases;
  Counter* lease_expirations;
  Counter* leases_done;
  Counter* lease_renewals;
  Counter* blocks_sent;
  Counter* bytes_sent;
  Counter* blocks_received;
  Counter* bytes_received;
  Counter* blocks_local_hit;
  Counter* transfers_ok;
  Counter* transfers_failed;
  Histogram* transfer_seconds;
};

TransferKvConnector::TransferKvConnector(TransferKvConnectorOptions options, size_t block_bytes,
                                         int block_size)
    : options_(std::move(options)), block_bytes_(block_bytes), block_size_(block_size) {}

Result<std::shared_ptr<TransferKvConnector>> TransferKvConnector::create(
    const KvMemory& memory, TransferKvConnectorOptions options) {
  if (options.role == PdRole::kAgg) return invalid_argument("an agg instance needs no KV connector");
  if (memory.base == nullptr) return failed_precondition("KV connector: the KV cache is not allocated");
  if (options.lease_ms <= 0) return invalid_argument("--kv-lease-ms must be positive, got {}", options.lease_ms);
  if (options.num_loaders < 1) return invalid_argument("KV connector: num_loaders must be >= 1");
  if (options.engine_id.empty()) return invalid_argument("KV connector: empty engine id");
  std::shared_ptr<TransferKvConnector> c(
      new TransferKvConnector(options, memory.layout.block_bytes(), memory.layout.block_size));
  BATON_RETURN_IF_ERROR(c->init(memory));
  return c;
}

Status TransferKvConnector::init(const KvMemory& memory) {
  KvRegionDesc region = KvRegionDesc::of(memory);
  if (options_.role == PdRole::kPrefill && options_.transport == "shm" && !memory.on_device) {
    // Peers map the region: serve it from a shared-memory mirror.
    remove_stale_mirrors();
    BATON_ASSIGN_OR_RETURN(mirror_, SharedMemoryBuffer::create(SharedMemoryBuffer::unique_name("pdkv"),
                                                               region.total_bytes()));
    backend_base_ = static_cast<const uint8_t*>(memory.base);
    region.base = mirror_->data();
    region.shm_name = mirror_->name();
  }
  if (memory.on_device && options_.transport == "tcp") {
    BATON_ASSIGN_OR_RETURN(copier_, make_device_copier(memory.device_id));
    region.copier = copier_.get();
  }
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<Transport> transport, make_transport(options_.transport));
  if (!options_.fault.empty()) {
    BATON_ASSIGN_OR_RETURN(FaultSpec spec, parse_fault(options_.fault));
    BATON_LOG_WARN("KV connector: injecting '{}' faults into every KV read (test only)", options_.fault);
    transport = std::make_unique<FaultTransport>(std::move(transport), spec);
  }
  TransferEngineOptions to;
  to.engine_id = options_.engine_id;
  to.model = options_.model;
  to.num_workers = options_.num_loaders;
  to.checksum = options_.checksum;
  // A pull renews the lease while it runs, so its own limit may exceed it.
  to.default_timeout_ms = options_.load_timeout_ms > 0 ? options_.load_timeout_ms
                                                       : std::max<int64_t>(options_.lease_ms, kMinLoadTimeoutMs);
  to.secret = options_.secret;
  to.agent.host = options_.host;
  to.agent.port = options_.kv_port;
  to.agent.max_connections = options_.agent_max_connections;
  to.agent.num_workers = options_.agent_workers;
  to.agent.idle_timeout_ms = options_.agent_idle_timeout_ms;
  to.agent.frame_timeout_ms = options_.agent_frame_timeout_ms;
  to.agent.check_grant = [this](const KvGrant& grant, const std::vector<BlockRun>* runs) {
    return check_grant(grant, runs);
  };
  to.agent.on_renew = [this](const std::string& peer, const std::string& id) { on_agent_done(peer, id, true); };
  BATON_ASSIGN_OR_RETURN(transfer_, TransferEngine::create(std::move(transport), to));
  BATON_RETURN_IF_ERROR(transfer_->register_memory(region).with_context("registering the KV cache"));
  if (options_.role == PdRole::kPrefill) {
    BATON_RETURN_IF_ERROR(
        transfer_
            ->start_agent([this](const std::string& peer, const std::string& id) { on_agent_done(peer, id, false); })
            .with_context(fmt::format("starting the KV agent on {}:{}", options_.host, options_.kv_port)));
  }
  local_desc_ = transfer_->local_descriptor();
  for (int i = 0; i < options_.num_loaders; ++i) loaders_.emplace_back([this] { loader_loop(); });
  BATON_LOG_INFO("KV connector: role {}, transport {}, engine '{}'{}", pd_role_name(options_.role),
                 options_.transport, options_.engine_id,
                 options_.role == PdRole::kPrefill ? fmt::format(", agent on {}:{}", local_desc_.host, local_desc_.port)
                                                   : std::string());
  return Status::ok();
}

void TransferKvConnector::attach_metrics(MetricsRegistry& r) {
  const MetricLabels& l = options_.metric_labels;
  {
    auto metrics = std::make_unique<Metrics>();
    Metrics& m = *metrics;
    m.blocks_pinned = &r.gauge("baton:kv_blocks_pinned", "KV blocks held under a lease, awaiting a remote reader", l);
    m.leases = &r.gauge("baton:kv_leases", "Live KV leases (finished prefills awaiting a decode instance)", l);
    m.lease_expirations = &r.counter("baton:kv_lease_expirations_total", "KV leases that expired unread", l);
    m.leases_done = &r.counter("baton:kv_leases_done_total", "KV leases ended by the decode side's done", l);
    m.lease_renewals = &r.counter("baton:kv_lease_renewals_total", "KV lease renewals from decode peers", l);
    m.blocks_sent = &r.counter("baton:kv_blocks_sent_total", "KV blocks of leases a decode peer finished reading", l);
    m.bytes_sent = &r.counter("baton:kv_bytes_sent_total", "Bytes of KV blocks a decode peer finished reading", l);
    m.blocks_received = &r.counter("baton:kv_blocks_received_total", "KV blocks pulled from prefill peers", l);
    m.bytes_received = &r.counter("baton:kv_bytes_received_total", "Bytes of KV pulled from prefill peers", l);
    m.blocks_local_hit = &r.counter("baton:kv_blocks_local_hit_total",
                                    "KV blocks not pulled because the local prefix cache held them", l);
    m.transfers_ok = &r.counter("baton:kv_transfers_total", "KV pulls that completed", l);
    m.transfers_failed = &r.counter("baton:kv_transfers_failed_total", "KV pulls that failed", l);
    m.transfer_seconds = &r.histogram("baton:kv_transfer_seconds", "Time of one request's KV pull",
                                      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
                                      l);
    std::lock_guard<std::mutex> lock(mu_);
    metrics_ = std::move(metrics);
    update_gauges_locked();
  }
}

TransferKvConnector::~TransferKvConnector() { stop(); }

void TransferKvConnector::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && loaders_.empty()) return;
    stopping_ = true;
    wakeup_ = nullptr;
    for (auto& [id, load] : loads_) {
      load->cancelled->store(true);
      if (load->handle) load->handle->cancel();
    }
  }
  loader_cv_.notify_all();
  for (std::thread& t : loaders_) t.join();
  loaders_.clear();
  transfer_.reset();  // stops the agent
}

int TransferKvConnector::kv_port() const { return local_desc_.port; }

void TransferKvConnector::set_wakeup(std::function<void()> wakeup) {
  std::lock_guard<std::mutex> lock(mu_);
  wakeup_ = std::move(wakeup);
}

void TransferKvConnector::wake() {
  std::function<void()> w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    w = wakeup_;
  }
  if (w) w();
}

bool TransferKvConnector::has_events() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!to_release_.empty() || !loads_done_.empty()) return true;
  const TimePoint now = SteadyClock::now();
  for (const auto& [id, lease] : leases_) {
    if (lease.expires <= now) return true;
  }
  return false;
}

bool TransferKvConnector::has_timers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !leases_.empty();
}

void TransferKvConnector::update_gauges_locked() {
  if (!metrics_) return;
  metrics_->blocks_pinned->set(static_cast<double>(stats_.num_blocks_pinned));
  metrics_->leases->set(static_cast<double>(stats_.num_leases));
}

// ---- prefill side ----

Json TransferKvConnector::on_prefill_finished(const std::string& request_id, int num_prompt_tokens,
                                              std::vector<int> block_ids) {
  if (mirror_) {
    // Copy the finished prompt's blocks into the shared-memory mirror, one
    // memcpy per run of consecutive block ids.
    uint8_t* dst = static_cast<uint8_t*>(mirror_->data());
    size_t i = 0;
    while (i < block_ids.size()) {
      size_t j = i + 1;
      while (j < block_ids.size() && block_ids[j] == block_ids[j - 1] + 1) ++j;
      const size_t offset = static_cast<size_t>(block_ids[i]) * block_bytes_;
      std::memcpy(dst + offset, backend_base_ + offset, (j - i) * block_bytes_);
      i = j;
    }
  }
  TransferParams params;
  params.engine_id = options_.engine_id;
  params.request_id = request_id;
  params.block_ids.assign(block_ids.begin(), block_ids.end());
  params.host = local_desc_.host;
  params.port = local_desc_.port;
  params.num_tokens = num_prompt_tokens;
  params.block_size = block_size_;
  params.lease_expires_ms = wall_ms() + options_.lease_ms;
  params.lease_ms = options_.lease_ms;
  params.transport = options_.transport;
  if (auto token = random_hex(kLeaseTokenBytes); token.is_ok()) {
    params.lease_token = std::move(token).value();
  } else {
    // No token: no reader can present it, and the lease simply expires.
    BATON_LOG_ERROR("KV lease of '{}': {}", request_id, token.status().to_string());
  }
  if (options_.secret) params.sign(*options_.secret);
  std::vector<int> replaced;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = leases_.find(request_id);
    if (it != leases_.end()) {  // an id reused while its lease lives: end the old one
      stats_.num_blocks_pinned -= static_cast<int64_t>(it->second.block_ids.size());
      --stats_.num_leases;
      replaced = std::move(it->second.block_ids);
      leases_.erase(it);
    }
    stats_.num_blocks_pinned += static_cast<int64_t>(block_ids.size());
    ++stats_.num_leases;
    leases_[request_id] = Lease{std::move(block_ids),
                                SteadyClock::now() + std::chrono::milliseconds(options_.lease_ms), params.lease_token};
    if (!replaced.empty()) to_release_.push_back(std::move(replaced));
    update_gauges_locked();
  }
  return params.to_json();
}

void TransferKvConnector::end_lease_locked(std::unordered_map<std::string, Lease>::iterator it) {
  stats_.num_blocks_pinned -= static_cast<int64_t>(it->second.block_ids.size());
  --stats_.num_leases;
  to_release_.push_back(std::move(it->second.block_ids));
  leases_.erase(it);
  update_gauges_locked();
}

Status TransferKvConnector::check_grant(const KvGrant& grant, const std::vector<BlockRun>* runs) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(grant.request_id);
  Status denied;
  if (it == leases_.end()) {
    denied = not_found("no KV lease for request '{}' (it ended, or never was)", grant.request_id);
  } else if (it->second.token.empty() || !equal_constant_time(it->second.token, grant.lease_token)) {
    denied = permission_denied("the lease token for request '{}' does not match", grant.request_id);
  } else if (runs != nullptr) {
    // Every block asked for must be one of the lease's.
    std::vector<int> owned = it->second.block_ids;
    std::sort(owned.begin(), owned.end());
    for (const BlockRun& run : *runs) {
      for (int64_t b = run.remote_first; b < run.remote_first + run.num_blocks; ++b) {
        if (!std::binary_search(owned.begin(), owned.end(), static_cast<int>(b))) {
          denied = permission_denied("block {} is not one of the KV lease of request '{}'", b, grant.request_id);
          break;
        }
      }
      if (!denied.is_ok()) break;
    }
  }
  if (!denied.is_ok()) ++stats_.num_grants_denied;
  return denied;
}

Status TransferKvConnector::release_lease(const Json& params) {
  if (options_.role != PdRole::kPrefill) {
    return failed_precondition("this instance's role is {}, not prefill: it holds no KV leases",
                               pd_role_name(options_.role));
  }
  BATON_ASSIGN_OR_RETURN(TransferParams p, TransferParams::parse(params));
  if (p.engine_id != options_.engine_id) {
    return not_found("kv_transfer_params name engine '{}', not this instance ('{}')", p.engine_id, options_.engine_id);
  }
  if (options_.secret) BATON_RETURN_IF_ERROR(p.verify(options_.secret.get()));
  if (Status st = check_grant(KvGrant{p.request_id, p.lease_token}, nullptr); !st.is_ok()) {
    // A wrong token is a bad request here (the caller's HTTP credentials are fine).
    return st.code() == StatusCode::kPermissionDenied ? invalid_argument("{}", st.message()) : st;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = leases_.find(p.request_id);
    if (it == leases_.end()) return not_found("no KV lease for request '{}'", p.request_id);
    BATON_LOG_INFO("KV lease of request '{}' released early: its decode never came ({} blocks freed)", p.request_id,
                   it->second.block_ids.size());
    ++stats_.num_leases_released;
    end_lease_locked(it);
  }
  wake();
  return Status::ok();
}

Status TransferKvConnector::check_transfer_params(const Json& params) const {
  if (options_.role != PdRole::kDecode) return Status::ok();  // a prefill ignores them (poll never loads)
  BATON_ASSIGN_OR_RETURN(TransferParams p, TransferParams::parse(params));
  return p.verify(options_.secret.get());
}

void TransferKvConnector::on_agent_done(const std::string& peer_engine_id, const std::string& request_id,
                                        bool renew) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = leases_.find(request_id);
    if (it == leases_.end()) {
      BATON_LOG_WARN("KV peer '{}' sent {} for '{}', which holds no lease (expired or unknown)", peer_engine_id,
                     renew ? "renew" : "done", request_id);
      return;
    }
    if (renew) {
      it->second.expires = SteadyClock::now() + std::chrono::milliseconds(options_.lease_ms);
      ++stats_.num_lease_renewals;
      if (metrics_) metrics_->lease_renewals->inc();
      return;
    }
    const size_t n = it->second.block_ids.size();
    ++stats_.num_leases_done;
    if (metrics_) {
      metrics_->leases_done->inc();
      metrics_->blocks_sent->inc(static_cast<double>(n));
      metrics_->bytes_sent->inc(static_cast<double>(n * block_bytes_));
    }
    end_lease_locked(it);
  }
  wake();
}

KvConnectorEvents TransferKvConnector::poll() {
  KvConnectorEvents ev;
  std::lock_guard<std::mutex> lock(mu_);
  ev.blocks_to_release.swap(to_release_);
  ev.loads_done.swap(loads_done_);
  const TimePoint now = SteadyClock::now();
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    BATON_LOG_WARN("KV lease of request '{}' expired unread after {} ms: freeing its {} blocks", it->first,
                   options_.lease_ms, it->second.block_ids.size());
    stats_.num_blocks_pinned -= static_cast<int64_t>(it->second.block_ids.size());
    --stats_.num_leases;
    ++stats_.num_lease_expirations;
    if (metrics_) metrics_->lease_expirations->inc();
    ev.blocks_to_release.push_back(std::move(it->second.block_ids));
    it = leases_.erase(it);
  }
  update_gauges_locked();
  return ev;
}

// ---- decode side ----

Status TransferKvConnector::start_load(const KvLoadRequest& load) {
  if (options_.role != PdRole::kDecode) {
    return failed_precondition("this instance's role is {}, not decode: it cannot pull KV",
                               pd_role_name(options_.role));
  }
  auto state = std::make_shared<Load>();
  state->request_id = load.request_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return unavailable("the KV connector is stopping");
    if (loads_.count(load.request_id)) return failed_precondition("request '{}' is already loading", load.request_id);
    loads_[load.request_id] = state;
    load_queue_.emplace_back(load, state);
  }
  loader_cv_.notify_one();
  return Status::ok();
}

void TransferKvConnector::cancel_load(const std::string& request_id, std::vector<int> block_ids) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = loads_.find(request_id);
    if (it == loads_.end()) {
      // Its pull already stopped (the result is queued and will be ignored).
      to_release_.push_back(std::move(block_ids));
    } else {
      Load& l = *it->second;
      l.cancelled->store(true);
      if (l.handle) l.handle->cancel();
      l.release_after = std::move(block_ids);
      l.abandoned = true;
      return;
    }
  }
  wake();
}

void TransferKvConnector::loader_loop() {
  for (;;) {
    std::pair<KvLoadRequest, std::shared_ptr<Load>> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      loader_cv_.wait(lock, [&] { return stopping_ || !load_queue_.empty(); });
      if (load_queue_.empty()) return;  // stopping with nothing left
      job = std::move(load_queue_.front());
      load_queue_.pop_front();
    }
    run_load(job.first, job.second);
  }
}

void TransferKvConnector::run_load(const KvLoadRequest& load, std::shared_ptr<Load> state) {
  Stopwatch watch;
  int64_t num_pulled = 0;
  Status st = state->cancelled->load() ? aborted("request '{}' was aborted before its KV pull", load.request_id)
                                       : pull(load, *state, &num_pulled);
  if (metrics_) {
    if (st.is_ok()) {
      metrics_->transfers_ok->inc();
      metrics_->blocks_received->inc(static_cast<double>(num_pulled));
      metrics_->bytes_received->inc(static_cast<double>(num_pulled) * static_cast<double>(block_bytes_));
      metrics_->transfer_seconds->observe(watch.elapsed_s());
    } else {
      metrics_->transfers_failed->inc();
    }
  }
  if (!st.is_ok()) BATON_LOG_WARN("KV pull of request '{}' failed: {}", load.request_id, st.to_string());
  finish_load(load.request_id, std::move(st));
}

Status TransferKvConnector::pull(const KvLoadRequest& load, Load& state, int64_t* num_blocks_pulled) {
  // Checked when the request came (check_transfer_params); again here, so
  // that nothing unchecked is ever acted on.
  BATON_ASSIGN_OR_RETURN(const TransferParams p, TransferParams::parse(load.kv_transfer_params));
  BATON_RETURN_IF_ERROR(p.verify(options_.secret.get()));
  const KvGrant grant{p.request_id, p.lease_token};
  // First the peer: an incompatible one is refused naming the field. A peer
  // already connected costs no round trip (every request names its own).
  BATON_ASSIGN_OR_RETURN(PeerDescriptor peer, transfer_->peer_for(p.engine_id, p.host, p.port));
  if (peer.engine_id != p.engine_id) {
    return failed_precondition("the KV agent at {}:{} is engine '{}', not '{}' named by kv_transfer_params", p.host,
                               p.port, peer.engine_id, p.engine_id);
  }
  // Whatever happens from here (read or not, failed or not), the prefill
  // side may free its blocks when this returns.
  struct DoneOnExit {
    TransferEngine* transfer;
    const std::string& peer;
    const KvGrant& grant;
    ~DoneOnExit() {
      if (Status d = transfer->notify_done(peer, grant); !d.is_ok()) {
        BATON_LOG_WARN("telling '{}' that '{}' is done failed: {}", peer, grant.request_id, d.to_string());
      }
    }
  } done_on_exit{transfer_.get(), peer.engine_id, grant};
  const std::string& remote_request = p.request_id;
  const std::vector<int64_t>& remote_ids = p.block_ids;
  if (p.num_tokens != load.num_prompt_tokens) {
    return invalid_argument("the prefill instance computed {} prompt tokens, this request has {}", p.num_tokens,
                            load.num_prompt_tokens);
  }
  // A lease that ended may have had its blocks reused: never read it.
  if (const int64_t late_ms = wall_ms() - p.lease_expires_ms; late_ms > 0) {
    return failed_precondition("the prefill instance's KV lease of '{}' expired {} ms ago", remote_request, late_ms);
  }
  const int first = load.num_local_tokens / block_size_;
  const int end = (load.num_tokens_to_load + block_size_ - 1) / block_size_;
  if (end > static_cast<int>(remote_ids.size()) || end > static_cast<int>(load.local_block_ids.size())) {
    return invalid_argument("kv_transfer_params holds {} remote blocks; {} tokens need {}", remote_ids.size(),
                            load.num_tokens_to_load, end);
  }
  Status st;
  if (first < end) {
    std::vector<int64_t> remote(remote_ids.begin() + first, remote_ids.begin() + end);
    std::vector<int64_t> local(load.local_block_ids.begin() + first, load.local_block_ids.begin() + end);
    ReadOptions ro;
    ro.request_id = load.request_id;
    ro.grant = grant;
    BATON_ASSIGN_OR_RETURN(auto handle, transfer_->read_blocks(peer.engine_id, remote, local, ro));
    {
      std::lock_guard<std::mutex> lock(mu_);
      state.handle = handle;
      if (state.cancelled->load()) handle->cancel();
    }
    // Renew the prefill's lease (its length is in the params) at a third of
    // its length while the read runs, and at once if half of it is gone.
    const int64_t lease_ms = p.lease_ms;
    const int64_t renew_ms = std::max(kMinRenewIntervalMs, lease_ms / 3);
    if (p.lease_expires_ms - wall_ms() < lease_ms / 2) {
      if (Status r = transfer_->notify_renew(peer.engine_id, grant); !r.is_ok()) {
        BATON_LOG_WARN("renewing the KV lease of '{}' failed: {}", remote_request, r.to_string());
      }
    }
    for (;;) {
      st = handle->wait(renew_ms);
      if (st.code() != StatusCode::kDeadlineExceeded || handle->poll() != TransferState::kPending) break;
      if (Status r = transfer_->notify_renew(peer.engine_id, grant); !r.is_ok()) {
        BATON_LOG_WARN("renewing the KV lease of '{}' failed: {}", remote_request, r.to_string());
      }
    }
    if (st.is_ok()) st = handle->status();
    if (st.is_ok()) {
      *num_blocks_pulled = end - first;
      std::lock_guard<std::mutex> lock(mu_);
      stats_.num_blocks_received += end - first;
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.num_blocks_local_hit += first;
    if (metrics_) metrics_->blocks_local_hit->inc(first);
  }
  return st;
}

void TransferKvConnector::finish_load(const std::string& request_id, Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = loads_.find(request_id);
    if (it != loads_.end()) {
      if (it->second->abandoned) to_release_.push_back(std::move(it->second->release_after));
      loads_.erase(it);
    }
    if (status.is_ok()) {
      ++stats_.num_loads_ok;
    } else {
      ++stats_.num_loads_failed;
    }
    loads_done_.push_back({request_id, std::move(status)});
  }
  wake();
}

TransferKvConnector::Stats TransferKvConnector::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  return s;
}

}  // namespace baton

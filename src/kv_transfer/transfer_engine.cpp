#include "kv_transfer/transfer_engine.h"

#include <chrono>

#include "common/log.h"
#include "kv_transfer/checksum.h"

namespace baton {

namespace {
ReadContext context_in(int64_t timeout_ms, const std::atomic<bool>* cancelled = nullptr) {
  return ReadContext{deadline_after_ms(timeout_ms), cancelled};
}
}  // namespace

TransferEngine::TransferEngine(std::unique_ptr<Transport> transport, TransferEngineOptions options)
    : transport_(std::move(transport)), options_(std::move(options)) {}

Result<std::unique_ptr<TransferEngine>> TransferEngine::create(std::unique_ptr<Transport> transport,
                                                               TransferEngineOptions options) {
  if (transport == nullptr) return invalid_argument("transfer engine: no transport");
  if (options.engine_id.empty()) return invalid_argument("transfer engine: engine_id is empty");
  if (options.num_workers < 1) {
    return invalid_argument("transfer engine: num_workers must be >= 1, got {}", options.num_workers);
  }
  if (options.default_timeout_ms <= 0 || options.connect_timeout_ms <= 0) {
    return invalid_argument("transfer engine: timeouts must be > 0");
  }
  if (options.secret) options.agent.secret = options.secret;
  transport->set_kv_secret(options.secret);
  std::unique_ptr<TransferEngine> engine(new TransferEngine(std::move(transport), options));
  for (int i = 0; i < options.num_workers; ++i) {
    engine->workers_.emplace_back([e = engine.get()] { e->worker_loop(); });
  }
  return engine;
}

TransferEngine::~TransferEngine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& weak : in_flight_) {
      if (auto h = weak.lock()) h->cancel();
    }
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  // Jobs never started fail their handles.
  for (auto& job : queue_) job();
  if (agent_) agent_->stop();
}

Status TransferEngine::register_memory(const KvRegionDesc& region) {
  if (registered_) return failed_precondition("transfer engine: KV memory already registered");
  BATON_RETURN_IF_ERROR(region.validate());
  PeerDescriptor desc = PeerDescriptor::from_region(region, options_.engine_id, options_.model);
  desc.transport = transport_->name();
  BATON_RETURN_IF_ERROR(transport_->register_local(region, desc));
  region_ = region;
  descriptor_ = std::move(desc);
  registered_ = true;
  return Status::ok();
}

Status TransferEngine::start_agent(DoneCallback on_done) {
  if (!registered_) return failed_precondition("transfer engine: register KV memory before the agent");
  if (agent_) return failed_precondition("transfer engine: agent already running");
  BATON_RETURN_IF_ERROR(transport_->start_serving(descriptor_, options_.agent.check_grant));
  BATON_ASSIGN_OR_RETURN(agent_, KvAgent::start(region_, descriptor_, std::move(on_done), options_.agent));
  descriptor_.host = agent_->descriptor().host;
  descriptor_.port = agent_->descriptor().port;
  return Status::ok();
}

int TransferEngine::agent_port() const { return agent_ ? agent_->port() : 0; }

PeerDescriptor TransferEngine::local_descriptor() const { return descriptor_; }

Result<PeerDescriptor> TransferEngine::connect_peer(const std::string& host, int port) {
  if (!registered_) return failed_precondition("transfer engine: register KV memory before connecting");
  // One connect at a time: two requests meeting a new peer together would both
  // open a link, and a transport may refuse the second (cuda_ipc: a process
  // maps a peer's IPC handle once, "resource already mapped"). The second
  // finds the first's link.
  std::lock_guard<std::mutex> connecting(connect_mu_);
  auto control = std::make_shared<AgentClient>(host, port, options_.secret);
  BATON_ASSIGN_OR_RETURN(PeerDescriptor remote,
                         control->fetch_descriptor(options_.engine_id, context_in(options_.connect_timeout_ms)));
  if (remote.engine_id == options_.engine_id) {
    return failed_precondition("KV peer at {}:{} has this engine's own id '{}'", host, port, remote.engine_id);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = peers_.find(remote.engine_id);
    if (it != peers_.end() && it->second->desc.compat_hash == remote.compat_hash &&
        it->second->desc.host == remote.host && it->second->desc.port == remote.port) {
      return it->second->desc;
    }
  }
  BATON_RETURN_IF_ERROR(check_compatible(descriptor_, remote));
  BATON_ASSIGN_OR_RETURN(auto link, transport_->connect(remote));
  auto peer = std::make_shared<Peer>();
  peer->desc = remote;
  peer->link = std::move(link);
  peer->control = std::move(control);
  std::lock_guard<std::mutex> lock(mu_);
  peers_[remote.engine_id] = peer;
  BATON_LOG_INFO("KV peer '{}' connected at {}:{} over {}", remote.engine_id, host, port, transport_->name());
  return remote;
}

Result<PeerDescriptor> TransferEngine::peer_for(const std::string& engine_id, const std::string& host, int port) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = peers_.find(engine_id);
    if (it != peers_.end() && it->second->desc.host == host && it->second->desc.port == port) return it->second->desc;
  }
  return connect_peer(host, port);
}

void TransferEngine::disconnect_peer(const std::string& peer_engine_id) {
  std::lock_guard<std::mutex> lock(mu_);
  peers_.erase(peer_engine_id);
}

Result<std::shared_ptr<TransferEngine::Peer>> TransferEngine::find_peer(const std::string& peer_engine_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(peer_engine_id);
  if (it == peers_.end()) {
    return not_found("KV peer '{}' is not connected (connect_peer first)", peer_engine_id);
  }
  return it->second;
}

Result<std::shared_ptr<TransferHandle>> TransferEngine::read_blocks(const std::string& peer_engine_id,
                                                                    const std::vector<int64_t>& remote_block_ids,
                                                                    const std::vector<int64_t>& local_block_ids,
                                                                    const ReadOptions& options) {
  if (!registered_) return failed_precondition("transfer engine: no KV memory registered");
  BATON_ASSIGN_OR_RETURN(auto peer, find_peer(peer_engine_id));
  BATON_ASSIGN_OR_RETURN(auto runs, coalesce_block_runs(remote_block_ids, local_block_ids, peer->desc.num_blocks,
                                                        region_.layout.num_blocks));
  const bool checksum = options.checksum.value_or(options_.checksum);
  if (checksum && region_.memory != MemoryKind::kHost) {
    return unimplemented("KV checksums need a host KV region (this one is on device {})", region_.device_id);
  }
  const int64_t timeout_ms = options.timeout_ms > 0 ? options.timeout_ms : options_.default_timeout_ms;
  const int64_t num_blocks = count_blocks(runs);
  std::shared_ptr<TransferHandle> handle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return aborted("transfer engine is shutting down");
    handle = std::make_shared<TransferHandle>(next_id_++, peer_engine_id, options.request_id, num_blocks,
                                              num_blocks * region_.block_bytes());
    // The deadline runs from submission: queueing counts.
    const TimePoint deadline = deadline_after_ms(timeout_ms);
    std::weak_ptr<TransferHandle> weak = handle;
    std::erase_if(in_flight_, [](const auto& w) { return w.expired(); });
    in_flight_.push_back(weak);
    queue_.push_back([this, peer, runs = std::move(runs), checksum, deadline, handle, grant = options.grant] {
      ReadContext ctx{deadline, handle->cancel_flag(), grant.request_id.empty() ? nullptr : &grant};
      Status st;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) st = aborted("transfer engine is shutting down");
      }
      if (st.is_ok()) st = run_read(*peer, runs, checksum, ctx);
      if (!st.is_ok() && !handle->request_id().empty()) {
        st = st.with_context("reading request '" + handle->request_id() + "' from '" + handle->peer_engine_id() + "'");
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (st.is_ok()) {
          ++stats_.num_transfers_ok;
          stats_.num_bytes_received += handle->num_bytes();
          stats_.num_blocks_received += static_cast<uint64_t>(handle->num_blocks());
        } else {
          ++stats_.num_transfers_failed;
          if (st.code() == StatusCode::kDataLoss) ++stats_.num_checksum_failures;
        }
      }
      handle->finish(std::move(st));
    });
  }
  cv_.notify_one();
  return handle;
}

Status TransferEngine::run_read(Peer& peer, const std::vector<BlockRun>& runs, bool checksum, const ReadContext& ctx) {
  if (ctx.is_cancelled()) return aborted("KV transfer cancelled before it started");
  if (ctx.expired()) return deadline_exceeded("KV transfer timed out before it started");
  BATON_ASSIGN_OR_RETURN(auto sums, peer.link->read(runs, checksum, ctx));
  if (checksum) BATON_RETURN_IF_ERROR(verify_run_checksums(region_, runs, sums));
  return Status::ok();
}

Status TransferEngine::notify_done(const std::string& peer_engine_id, const KvGrant& grant) {
  BATON_ASSIGN_OR_RETURN(auto peer, find_peer(peer_engine_id));
  return peer->control->notify_done(options_.engine_id, grant, context_in(options_.connect_timeout_ms));
}

Status TransferEngine::notify_renew(const std::string& peer_engine_id, const KvGrant& grant) {
  BATON_ASSIGN_OR_RETURN(auto peer, find_peer(peer_engine_id));
  return peer->control->notify_done(options_.engine_id, grant, context_in(options_.connect_timeout_ms),
                                    /*renew=*/true);
}

Result<Json> TransferEngine::query_progress(const std::string& peer_engine_id, const KvGrant& grant,
                                            int64_t num_blocks_known, int64_t wait_ms) {
  BATON_ASSIGN_OR_RETURN(auto peer, find_peer(peer_engine_id));
  return peer->control->query_progress(grant, num_blocks_known, wait_ms,
                                       context_in(options_.connect_timeout_ms + wait_ms));
}

TransferEngineStats TransferEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void TransferEngine::worker_loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

}  // namespace baton

#include "pd/prefill_kv_connector.h"

#include <algorithm>

#include "common/log.h"
#include "kv_transfer/kv_secret.h"
#include "kv_transfer/transfer_params.h"

namespace baton {

namespace {

constexpr size_t kLeaseTokenBytes = 16;  // 128 random bits: unguessable

}  // namespace

PrefillKvConnector::PrefillKvConnector(PdConnectorOptions options, const KvLayout& layout)
    : PdKvConnector(std::move(options)), layout_(layout), leases_(options_.lease_ms, options_.clock.steady_now) {}

Result<std::shared_ptr<PrefillKvConnector>> PrefillKvConnector::create(const KvMemory& memory,
                                                                       PdConnectorOptions options,
                                                                       std::unique_ptr<Transport> transport) {
  BATON_RETURN_IF_ERROR(check_options(memory, options, PdRole::kPrefill));
  std::shared_ptr<PrefillKvConnector> c(new PrefillKvConnector(std::move(options), wire_kv_layout(memory)));
  BATON_RETURN_IF_ERROR(c->init(memory, std::move(transport)));
  return c;
}

Status PrefillKvConnector::init(const KvMemory& memory, std::unique_ptr<Transport> transport) {
  PdAgentHooks hooks;
  hooks.check_grant = [this](const KvGrant& grant, const std::vector<BlockRun>* runs) {
    return leases_.check(grant, runs);
  };
  hooks.on_done = [this](const std::string& peer, const std::string& id) { on_agent_done(peer, id); };
  hooks.on_renew = [this](const std::string& peer, const std::string& id) { on_agent_renew(peer, id); };
  hooks.on_progress = [this](const KvGrant& grant, int64_t known, int64_t wait_ms) {
    return leases_.progress(grant, known, wait_ms);
  };
  BATON_ASSIGN_OR_RETURN(transfer_, PdTransfer::open(memory, options_, std::move(transport), &hooks));
  const PeerDescriptor desc = transfer_.engine->local_descriptor();
  port_ = desc.port;
  host_ = desc.host;
  BATON_LOG_INFO("KV connector: role prefill, transport {}, engine '{}', agent on {}:{}", options_.transport,
                 options_.engine_id, host_, port_);
  return Status::ok();
}

PrefillKvConnector::~PrefillKvConnector() { stop(); }

void PrefillKvConnector::stop() {
  set_wakeup(nullptr);
  leases_.close();           // no progress query waits any longer
  transfer_.engine.reset();  // stops the agent
}

void PrefillKvConnector::attach_metrics(MetricsRegistry& registry) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    metrics_ = std::make_unique<PdMetrics>(registry, options_.metric_labels);
  }
  update_gauges();
}

void PrefillKvConnector::update_gauges() {
  const LeaseStats s = leases_.stats();
  std::lock_guard<std::mutex> lock(mu_);
  if (metrics_) metrics_->set_leases(s.num_leases, s.num_blocks_pinned);
}

TransferParams PrefillKvConnector::new_params(const std::string& request_id, int num_prompt_tokens,
                                              bool stream_kv) const {
  TransferParams params;
  params.engine_id = options_.engine_id;
  params.request_id = request_id;
  params.host = host_;
  params.port = port_;
  params.num_tokens = num_prompt_tokens;
  params.block_size = layout_.block_size;
  params.lease_expires_ms = options_.clock.wall_now_ms() + options_.lease_ms;
  params.lease_ms = options_.lease_ms;
  params.transport = options_.transport;
  params.stream_kv = stream_kv;
  if (auto token = random_hex(kLeaseTokenBytes); token.is_ok()) {
    params.lease_token = std::move(token).value();
  } else {
    // No token: no reader can present it, and the lease simply expires.
    BATON_LOG_ERROR("KV lease of '{}': {}", request_id, token.status().to_string());
  }
  return params;
}

Status PrefillKvConnector::copy_to_region(const std::vector<int>& block_ids) {
  if (transfer_.mirror) transfer_.mirror->copy_blocks(block_ids);
  if (transfer_.relayout) return transfer_.relayout->gather(block_ids);
  return Status::ok();
}

void PrefillKvConnector::mirror_up_to(Stream& s, const std::vector<int>& block_ids, size_t n) {
  n = std::min(n, block_ids.size());
  if (n > s.num_blocks_mirrored) {
    Status st = copy_to_region(std::vector<int>(block_ids.begin() + s.num_blocks_mirrored, block_ids.begin() + n));
    // Not counted as mirrored: the next progress (or the finish) copies them again.
    if (!st.is_ok()) {
      BATON_LOG_ERROR("KV stream: {}", st.to_string());
      return;
    }
  }
  s.num_blocks_mirrored = std::max(s.num_blocks_mirrored, n);
}

Json PrefillKvConnector::on_prefill_progress(const std::string& request_id, int num_prompt_tokens,
                                             int num_computed_tokens, const std::vector<int>& block_ids) {
  Json first_params;
  auto it = streams_.find(request_id);
  if (it == streams_.end()) {
    TransferParams params = new_params(request_id, num_prompt_tokens, /*stream_kv=*/true);
    if (options_.secret) params.sign(*options_.secret);
    std::vector<int> replaced = leases_.start_streamed(request_id, params.lease_token);
    if (!replaced.empty()) hand_back(std::move(replaced));
    first_params = params.to_json();
    it = streams_.emplace(request_id, Stream{first_params, 0}).first;
  }
  // Only whole blocks are final before the prompt ends.
  const size_t ready = std::min(block_ids.size(), static_cast<size_t>(num_computed_tokens / layout_.block_size));
  mirror_up_to(it->second, block_ids, ready);
  // What reached the region peers read (all `ready` blocks unless a copy failed).
  leases_.publish(request_id, block_ids, static_cast<int64_t>(std::min(ready, it->second.num_blocks_mirrored)));
  update_gauges();
  return first_params;
}

std::vector<int> PrefillKvConnector::on_prefill_stopped(const std::string& request_id, const std::string& why,
                                                        std::vector<int> block_ids) {
  streams_.erase(request_id);
  std::vector<int> free_now = leases_.abort_streamed(request_id, why, std::move(block_ids));
  BATON_LOG_INFO("KV stream of request '{}' stopped ({}): its lease ends with its reader", request_id, why);
  update_gauges();
  return free_now;
}

Json PrefillKvConnector::on_prefill_finished(const std::string& request_id, int num_prompt_tokens,
                                             std::vector<int> block_ids) {
  if (auto it = streams_.find(request_id); it != streams_.end()) {
    Stream s = std::move(it->second);
    streams_.erase(it);
    mirror_up_to(s, block_ids, block_ids.size());
    if (s.num_blocks_mirrored < block_ids.size()) {  // a copy failed: the stream ends here, its reader with it
      std::vector<int> free_now = leases_.abort_streamed(request_id, "its KV could not be copied",
                                                         std::move(block_ids));
      if (!free_now.empty()) hand_back(std::move(free_now));
      update_gauges();
      return Json();
    }
    if (!leases_.finish_streamed(request_id, block_ids)) {
      // Its reader already left (done, release, expiry) or the lease stopped.
      hand_back(std::move(block_ids));
      return Json();
    }
    update_gauges();
    return s.params;
  }
  if (Status st = copy_to_region(block_ids); !st.is_ok()) {
    // No lease over KV that peers cannot read: the blocks go back, the request gets no params.
    BATON_LOG_ERROR("KV of request '{}' not offered: {}", request_id, st.to_string());
    hand_back(std::move(block_ids));
    return Json();
  }
  TransferParams params = new_params(request_id, num_prompt_tokens, /*stream_kv=*/false);
  params.block_ids.assign(block_ids.begin(), block_ids.end());
  if (options_.secret) params.sign(*options_.secret);
  // An id reused while its lease lives: the old lease ends.
  std::vector<int> replaced = leases_.start(request_id, std::move(block_ids), params.lease_token);
  if (!replaced.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    to_release_.push_back(std::move(replaced));
  }
  update_gauges();
  return params.to_json();
}

Status PrefillKvConnector::release_lease(const Json& params) {
  BATON_ASSIGN_OR_RETURN(TransferParams p, TransferParams::parse(params));
  if (p.engine_id != options_.engine_id) {
    return not_found("kv_transfer_params name engine '{}', not this instance ('{}')", p.engine_id, options_.engine_id);
  }
  if (options_.secret) BATON_RETURN_IF_ERROR(p.verify(options_.secret.get()));
  if (Status st = leases_.check(KvGrant{p.request_id, p.lease_token}, nullptr); !st.is_ok()) {
    // A wrong token is a bad request here (the caller's HTTP credentials are fine).
    return st.code() == StatusCode::kPermissionDenied ? invalid_argument("{}", st.message()) : st;
  }
  bool found = false;
  std::vector<int> blocks = leases_.end(p.request_id, LeaseEnd::kReleased, &found);
  if (!found) return not_found("no KV lease for request '{}'", p.request_id);
  BATON_LOG_INFO("KV lease of request '{}' released early: its decode never came ({} blocks freed)", p.request_id,
                 blocks.size());
  hand_back(std::move(blocks));
  return Status::ok();
}

void PrefillKvConnector::on_agent_renew(const std::string& peer_engine_id, const std::string& request_id) {
  if (!leases_.renew(request_id)) {
    BATON_LOG_WARN("KV peer '{}' sent renew for '{}', which holds no lease (expired or unknown)", peer_engine_id,
                   request_id);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (metrics_) metrics_->lease_renewed();
}

void PrefillKvConnector::on_agent_done(const std::string& peer_engine_id, const std::string& request_id) {
  bool found = false;
  std::vector<int> blocks = leases_.end(request_id, LeaseEnd::kDone, &found);
  if (!found) {
    BATON_LOG_WARN("KV peer '{}' sent done for '{}', which holds no lease (expired or unknown)", peer_engine_id,
                   request_id);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (metrics_) metrics_->lease_done(static_cast<int64_t>(blocks.size()), layout_.block_bytes());
  }
  hand_back(std::move(blocks));
}

void PrefillKvConnector::hand_back(std::vector<int> block_ids) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    to_release_.push_back(std::move(block_ids));
  }
  update_gauges();
  wake();
}

bool PrefillKvConnector::has_events() const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!to_release_.empty()) return true;
  }
  return leases_.has_expired();
}

KvConnectorEvents PrefillKvConnector::poll() {
  KvConnectorEvents ev;
  std::vector<std::vector<int>> expired = leases_.expire();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ev.blocks_to_release.swap(to_release_);
    for (auto& blocks : expired) {
      if (metrics_) metrics_->lease_expired();
      ev.blocks_to_release.push_back(std::move(blocks));
    }
  }
  if (!expired.empty()) update_gauges();
  return ev;
}

Status PrefillKvConnector::start_load(const KvLoadRequest& load) {
  (void)load;
  return failed_precondition("this instance's role is prefill, not decode: it cannot pull KV");
}

void PrefillKvConnector::cancel_load(const std::string& request_id, std::vector<int> block_ids) {
  // Nothing loads here (start_load refuses): the blocks go straight back.
  (void)request_id;
  hand_back(std::move(block_ids));
}

PdStats PrefillKvConnector::stats() const {
  const LeaseStats l = leases_.stats();
  PdStats s;
  s.num_leases = l.num_leases;
  s.num_blocks_pinned = l.num_blocks_pinned;
  s.num_lease_expirations = l.num_lease_expirations;
  s.num_leases_done = l.num_leases_done;
  s.num_lease_renewals = l.num_lease_renewals;
  s.num_leases_released = l.num_leases_released;
  s.num_grants_denied = l.num_grants_denied;
  return s;
}

}  // namespace baton

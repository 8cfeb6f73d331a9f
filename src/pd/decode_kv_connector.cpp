#include "pd/decode_kv_connector.h"

#include "common/log.h"
#include "kv_transfer/transfer_params.h"

namespace baton {

DecodeKvConnector::DecodeKvConnector(PdConnectorOptions options, const KvLayout& layout)
    : PdKvConnector(std::move(options)), layout_(layout) {}

Result<std::shared_ptr<DecodeKvConnector>> DecodeKvConnector::create(const KvMemory& memory, PdConnectorOptions options,
                                                                     std::unique_ptr<Transport> transport) {
  BATON_RETURN_IF_ERROR(check_options(memory, options, PdRole::kDecode));
  std::shared_ptr<DecodeKvConnector> c(new DecodeKvConnector(std::move(options), wire_kv_layout(memory)));
  BATON_RETURN_IF_ERROR(c->init(memory, std::move(transport)));
  return c;
}

Status DecodeKvConnector::init(const KvMemory& memory, std::unique_ptr<Transport> transport) {
  BATON_ASSIGN_OR_RETURN(transfer_, PdTransfer::open(memory, options_, std::move(transport), nullptr));
  pull_ = std::make_unique<KvPull>(*transfer_.engine, options_.secret, layout_.block_size, options_.clock.wall_now_ms);
  if (TpKvRelayout* relayout = transfer_.relayout.get()) {
    // A tensor-parallel decode: reads land in the wire-layout region; each
    // rank takes its heads from there before the pull counts as done.
    pull_->set_on_read([relayout](const std::vector<int64_t>& block_ids) { return relayout->scatter(block_ids); });
  }
  loaders_ = std::make_unique<LoaderPool>(options_.num_loaders);
  BATON_LOG_INFO("KV connector: role decode, transport {}, engine '{}'", options_.transport, options_.engine_id);
  return Status::ok();
}

DecodeKvConnector::~DecodeKvConnector() { stop(); }

void DecodeKvConnector::stop() {
  set_wakeup(nullptr);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [id, load] : loads_) load->cancel.cancel();
  }
  if (loaders_) loaders_->stop();
  transfer_.engine.reset();
}

void DecodeKvConnector::attach_metrics(MetricsRegistry& registry) {
  std::lock_guard<std::mutex> lock(mu_);
  metrics_ = std::make_unique<PdMetrics>(registry, options_.metric_labels);
}

Status DecodeKvConnector::release_lease(const Json& params) {
  (void)params;
  return failed_precondition("this instance's role is decode, not prefill: it holds no KV leases");
}

Json DecodeKvConnector::on_prefill_finished(const std::string& request_id, int num_prompt_tokens,
                                            std::vector<int> block_ids) {
  // A decode instance never holds a lease: a do_remote_decode request that
  // reaches it finishes as a plain one and its blocks go back.
  (void)num_prompt_tokens;
  BATON_LOG_WARN("request '{}' asked a decode instance for a remote decode: no KV lease kept", request_id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    to_release_.push_back(std::move(block_ids));
  }
  wake();
  return Json();  // no kv_transfer_params in its answer
}

Status DecodeKvConnector::check_transfer_params(const Json& params) const {
  BATON_ASSIGN_OR_RETURN(TransferParams p, TransferParams::parse(params));
  return p.verify(options_.secret.get());
}

Status DecodeKvConnector::start_load(const KvLoadRequest& load) {
  auto state = std::make_shared<Load>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return unavailable("the KV connector is stopping");
    if (loads_.count(load.request_id)) return failed_precondition("request '{}' is already loading", load.request_id);
    loads_[load.request_id] = state;
  }
  if (!loaders_->submit([this, load, state] { run_load(load, *state); })) {
    std::lock_guard<std::mutex> lock(mu_);
    loads_.erase(load.request_id);
    return unavailable("the KV connector is stopping");
  }
  return Status::ok();
}

void DecodeKvConnector::cancel_load(const std::string& request_id, std::vector<int> block_ids) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = loads_.find(request_id);
    if (it != loads_.end()) {
      // The blocks come back once the pull has stopped writing into them.
      Load& l = *it->second;
      l.cancel.cancel();
      l.release_after = std::move(block_ids);
      l.abandoned = true;
      return;
    }
    // Its pull already stopped (the result is queued and will be ignored).
    to_release_.push_back(std::move(block_ids));
  }
  wake();
}

void DecodeKvConnector::abandon_load(const std::string& request_id, const Json& kv_transfer_params) {
  auto tell = [this, request_id, kv_transfer_params] {
    if (Status st = pull_->abandon(kv_transfer_params); !st.is_ok()) {
      BATON_LOG_WARN("telling the prefill that request '{}' will not pull its KV failed: {}", request_id,
                     st.to_string());
    }
  };
  if (!loaders_->submit(std::move(tell))) {
    BATON_LOG_WARN("request '{}' ended unpulled while the KV connector stops: its lease expires", request_id);
  }
}

void DecodeKvConnector::run_load(const KvLoadRequest& load, Load& state) {
  Stopwatch watch;
  PullCounts counts;
  Status st = state.cancel.cancelled() ? aborted("request '{}' was aborted before its KV pull", load.request_id)
                                       : pull_->run(load, state.cancel, &counts);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (metrics_) {
      if (st.is_ok()) {
        metrics_->pull_ok(counts.num_blocks_pulled, layout_.block_bytes(), watch.elapsed_s());
      } else {
        metrics_->pull_failed();
      }
      metrics_->local_hit(counts.num_blocks_local_hit);
    }
  }
  if (!st.is_ok()) BATON_LOG_WARN("KV pull of request '{}' failed: {}", load.request_id, st.to_string());
  finish_load(load.request_id, std::move(st), counts);
}

void DecodeKvConnector::finish_load(const std::string& request_id, Status status, const PullCounts& counts) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = loads_.find(request_id);
    if (it != loads_.end()) {
      if (it->second->abandoned) to_release_.push_back(std::move(it->second->release_after));
      loads_.erase(it);
    }
    ++(status.is_ok() ? stats_.num_loads_ok : stats_.num_loads_failed);
    if (status.is_ok()) stats_.num_blocks_received += counts.num_blocks_pulled;
    stats_.num_blocks_local_hit += counts.num_blocks_local_hit;
    loads_done_.push_back({request_id, std::move(status)});
  }
  wake();
}

bool DecodeKvConnector::has_events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !to_release_.empty() || !loads_done_.empty();
}

KvConnectorEvents DecodeKvConnector::poll() {
  KvConnectorEvents ev;
  std::lock_guard<std::mutex> lock(mu_);
  ev.blocks_to_release.swap(to_release_);
  ev.loads_done.swap(loads_done_);
  return ev;
}

PdStats DecodeKvConnector::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace baton

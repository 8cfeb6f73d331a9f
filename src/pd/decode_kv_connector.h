// DecodeKvConnector: the decode side of the PD handoff. kv_transfer_params
// are checked when the request arrives (check_transfer_params: types; with a
// secret the signature, without one a loopback host); the engine allocates
// the prompt's blocks (a local prefix-cache hit shrinks the pull) and calls
// start_load; the pull (KvPull) runs on a loader thread (LoaderPool):
// connect to the prefill's agent (once per peer; an incompatible peer is
// refused there, naming the field), read the blocks the local prefix cache
// lacks as ONE batched read, renew the lease while it runs, say "done", queue
// the result for poll(). A failed pull fails the request or, with the
// recompute policy, the engine prefills it locally. A request aborted before
// its pull started still tells the prefill "done" (abandon_load), so that an
// early-stopped request's lease does not wait for its expiry. With params of
// a streamed lease ("stream_kv") the pull runs while the prefill computes.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "pd/kv_pull.h"
#include "pd/loader_pool.h"
#include "pd/pd_kv_connector.h"
#include "pd/pd_metrics.h"
#include "pd/pd_transfer.h"

namespace baton {

class DecodeKvConnector : public PdKvConnector {
 public:
  static Result<std::shared_ptr<DecodeKvConnector>> create(const KvMemory& memory, PdConnectorOptions options,
                                                           std::unique_ptr<Transport> transport = nullptr);
  ~DecodeKvConnector() override;

  // PdKvConnector.
  void attach_metrics(MetricsRegistry& registry) override;
  void stop() override;
  Status release_lease(const Json& params) override;
  PdStats stats() const override;
  int kv_port() const override { return 0; }

  // KvConnector.
  bool has_events() const override;
  bool has_timers() const override { return false; }
  Json on_prefill_finished(const std::string& request_id, int num_prompt_tokens, std::vector<int> block_ids) override;
  Status check_transfer_params(const Json& params) const override;
  Status start_load(const KvLoadRequest& load) override;
  void cancel_load(const std::string& request_id, std::vector<int> block_ids) override;
  void abandon_load(const std::string& request_id, const Json& kv_transfer_params) override;
  KvConnectorEvents poll() override;

 private:
  struct Load {
    PullCancel cancel;
    std::vector<int> release_after;  // blocks to give back when it stops (abandoned)
    bool abandoned = false;
  };

  DecodeKvConnector(PdConnectorOptions options, const KvLayout& layout);
  Status init(const KvMemory& memory, std::unique_ptr<Transport> transport);
  void run_load(const KvLoadRequest& load, Load& state);
  void finish_load(const std::string& request_id, Status status, const PullCounts& counts);

  const KvLayout layout_;
  PdTransfer transfer_;
  std::unique_ptr<KvPull> pull_;
  std::unique_ptr<LoaderPool> loaders_;

  mutable std::mutex mu_;  // guards what follows
  std::unique_ptr<PdMetrics> metrics_;
  std::unordered_map<std::string, std::shared_ptr<Load>> loads_;  // queued or running
  std::vector<KvLoadResult> loads_done_;
  std::vector<std::vector<int>> to_release_;
  bool stopping_ = false;
  PdStats stats_;
};

}  // namespace baton

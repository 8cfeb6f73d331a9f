// PrefillKvConnector: the prefill side of the PD handoff. Runs the KV agent
// on --kv-port; a finished do_remote_decode request's blocks are held under a
// lease (LeaseTable) until the decode side says "done" (freed at once),
// "renew" (extended), the router releases it (it gave up on the request:
// release_lease) or the lease expires (freed, counted). Each lease has an
// unguessable token (RAND_bytes) in its kv_transfer_params; the agent serves
// only that lease's blocks to a reader presenting it, and only its holder
// may renew it, say "done" or release it. With a KV secret the params are
// signed too, and peers authenticate at connect (docs/security.md, "The KV
// port"). With the shm transport and host KV, peers map a shared-memory
// mirror (ShmKvMirror) that a lease's blocks are copied into when it starts;
// a tensor-parallel prefill serves a region in the wire layout that its
// ranks' heads are gathered into the same way (TpKvRelayout).
// Streamed KV (params "stream_kv"): the lease starts before the prompt is
// computed, readers long-poll the agent for its progress and read blocks as
// they become final (LeaseTable); the mirror is filled as they do.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kv_transfer/transfer_params.h"
#include "pd/lease_table.h"
#include "pd/pd_kv_connector.h"
#include "pd/pd_metrics.h"
#include "pd/pd_transfer.h"

namespace baton {

class PrefillKvConnector : public PdKvConnector {
 public:
  static Result<std::shared_ptr<PrefillKvConnector>> create(const KvMemory& memory, PdConnectorOptions options,
                                                            std::unique_ptr<Transport> transport = nullptr);
  ~PrefillKvConnector() override;

  // PdKvConnector.
  void attach_metrics(MetricsRegistry& registry) override;
  void stop() override;
  Status release_lease(const Json& params) override;
  PdStats stats() const override;
  int kv_port() const override { return port_; }

  // KvConnector.
  bool has_events() const override;
  bool has_timers() const override { return !leases_.empty(); }
  Json on_prefill_finished(const std::string& request_id, int num_prompt_tokens, std::vector<int> block_ids) override;
  Json on_prefill_progress(const std::string& request_id, int num_prompt_tokens, int num_computed_tokens,
                           const std::vector<int>& block_ids) override;
  std::vector<int> on_prefill_stopped(const std::string& request_id, const std::string& why,
                                      std::vector<int> block_ids) override;
  Status start_load(const KvLoadRequest& load) override;
  void cancel_load(const std::string& request_id, std::vector<int> block_ids) override;
  KvConnectorEvents poll() override;

 private:
  // A streamed prompt still computing (engine thread only).
  struct Stream {
    Json params;                     // what its lease was started with
    size_t num_blocks_mirrored = 0;  // shm: blocks copied into the mirror
  };

  PrefillKvConnector(PdConnectorOptions options, const KvLayout& layout);
  // A new lease's params (token drawn, signed), without block ids.
  TransferParams new_params(const std::string& request_id, int num_prompt_tokens, bool stream_kv) const;
  // Copies these blocks into the region peers read, when it is not the
  // backend's cache itself: the shm mirror, or a tensor-parallel
  // instance's wire-layout region (gathered from its ranks).
  Status copy_to_region(const std::vector<int>& block_ids);
  // Copies blocks [s.num_blocks_mirrored, n) of `block_ids` into the region peers read (copy_to_region).
  void mirror_up_to(Stream& s, const std::vector<int>& block_ids, size_t n);
  Status init(const KvMemory& memory, std::unique_ptr<Transport> transport);
  // The agent's callbacks (its threads).
  void on_agent_done(const std::string& peer_engine_id, const std::string& request_id);
  void on_agent_renew(const std::string& peer_engine_id, const std::string& request_id);
  // Queues ended leases' blocks for poll() and wakes the engine.
  void hand_back(std::vector<int> block_ids);
  void update_gauges();

  const KvLayout layout_;
  LeaseTable leases_;
  PdTransfer transfer_;
  int port_ = 0;
  std::string host_;  // the agent's advertised address
  std::unordered_map<std::string, Stream> streams_;

  mutable std::mutex mu_;  // guards what follows
  std::unique_ptr<PdMetrics> metrics_;
  std::vector<std::vector<int>> to_release_;
};

}  // namespace baton

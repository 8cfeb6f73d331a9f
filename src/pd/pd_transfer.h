// PdTransfer: the transfer engine a PD connector moves KV with, built from
// its options over the backend's KV cache: the transport (options.transport,
// or the one given; wrapped in a FaultTransport for --kv-fault), the staging
// copier for device KV (over tcp, or at TP > 1), the shared-memory mirror a shm prefill
// serves from, the wire-layout region of a tensor-parallel instance
// (TpKvRelayout), and (prefill) the KV agent with the lease hooks.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv/kv_layout.h"
#include "kv_transfer/kv_agent.h"
#include "kv_transfer/transfer_engine.h"
#include "pd/pd_options.h"
#include "pd/shm_kv_mirror.h"
#include "pd/tp_kv_relayout.h"

namespace baton {

// What the prefill's KV agent asks its lease table.
struct PdAgentHooks {
  GrantCheck check_grant;
  DoneCallback on_done;
  DoneCallback on_renew;
  ProgressQuery on_progress;  // streamed leases
};

struct PdTransfer {
  // Device KV: staged through the host (tcp), relayout at TP > 1. Outlives relayout and engine.
  std::unique_ptr<DeviceCopier> copier;
  std::unique_ptr<ShmKvMirror> mirror;  // shm prefill with host KV: what peers map
  // A tensor-parallel instance: the region in the wire layout that peers
  // read (prefill: gathered from the ranks) or reads land in (decode:
  // scattered to the ranks). Null at TP=1. Outlives engine.
  std::unique_ptr<TpKvRelayout> relayout;
  std::unique_ptr<TransferEngine> engine;

  // `hooks` non-null (prefill): the agent is started with them.
  static Result<PdTransfer> open(const KvMemory& memory, const PdConnectorOptions& options,
                                 std::unique_ptr<Transport> transport, const PdAgentHooks* hooks);
};

}  // namespace baton

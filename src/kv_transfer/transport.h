// Transport: how KV bytes move between two engines' registered regions.
// A transport registers the local region (adding what a peer needs to reach
// it to the descriptor), then opens a PeerLink once per peer; the transfer
// engine drives links from its worker threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "kv_transfer/block_runs.h"
#include "kv_transfer/kv_region.h"
#include "kv_transfer/kv_secret.h"
#include "kv_transfer/peer_descriptor.h"

namespace baton {

struct TransportCaps {
  bool host_memory = false;    // moves KV that lives in host memory
  bool device_memory = false;  // moves KV that lives in GPU memory
  bool cross_host = false;     // works between two hosts
};

// The lease a reader presents to a serving KV agent: the prefill's request
// id and the unguessable token its kv_transfer_params carry. The agent serves
// only blocks of that lease, and only its holder may renew it or say "done".
struct KvGrant {
  std::string request_id;
  std::string lease_token;
};

// Asked before a read is served (`runs`: the blocks asked for) and before a
// done/renew is passed on (`runs` null): OK, or the error the peer gets.
using GrantCheck = std::function<Status(const KvGrant& grant, const std::vector<BlockRun>* runs)>;

// What one read may spend: it must return by `deadline` (DEADLINE_EXCEEDED)
// and soon after `cancelled` turns true (ABORTED); `grant` is the lease it
// presents to the serving agent (tcp; null: none).
struct ReadContext {
  TimePoint deadline = TimePoint::max();
  const std::atomic<bool>* cancelled = nullptr;
  const KvGrant* grant = nullptr;

  bool is_cancelled() const { return cancelled != nullptr && cancelled->load(); }
  bool expired() const { return SteadyClock::now() >= deadline; }
};

// now + timeout_ms, clamped to [0, 30 days] so that huge values cannot overflow.
inline TimePoint deadline_after_ms(int64_t timeout_ms) {
  constexpr int64_t kMaxMs = 30ll * 24 * 3600 * 1000;
  return SteadyClock::now() + std::chrono::milliseconds(std::min<int64_t>(std::max<int64_t>(timeout_ms, 0), kMaxMs));
}

// An open path to one peer's region.
class PeerLink {
 public:
  virtual ~PeerLink() = default;
  // Copies the runs (remote -> local) into the local region as one batched
  // operation. With want_checksums, returns the xxHash64 of every source
  // block in run order (computed on the serving side), else an empty vector.
  virtual Result<std::vector<uint64_t>> read(const std::vector<BlockRun>& runs, bool want_checksums,
                                             const ReadContext& ctx) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string name() const = 0;
  virtual TransportCaps caps() const = 0;
  // Registers the local KV region (once). Adds to `desc.transport_params`
  // what a peer needs to reach it (shm name, IPC handle, ...).
  virtual Status register_local(const KvRegionDesc& region, PeerDescriptor& desc) = 0;
  // Opens a link to a peer whose descriptor was checked compatible.
  virtual Result<std::unique_ptr<PeerLink>> connect(const PeerDescriptor& remote) = 0;
  // The KV secret links authenticate with to a peer's agent (transports that
  // talk to the agent for their data: tcp). Called before connect().
  virtual void set_kv_secret(std::shared_ptr<const KvSecret> secret) { (void)secret; }
  // The serving side, before its KV agent starts (TransferEngine::start_agent):
  // a transport that serves reads itself rather than through the agent (ucx)
  // starts doing so, checking each read with `check_grant` (unset: any block
  // may be read), and adds to `desc` what readers need to reach it. The
  // descriptor is handed out only by the agent, after its handshake.
  virtual Status start_serving(PeerDescriptor& desc, GrantCheck check_grant) {
    (void)desc;
    (void)check_grant;
    return Status::ok();
  }
};

// Refuses a region the transport's capabilities do not cover.
Status check_region_caps(const Transport& transport, const KvRegionDesc& region);

}  // namespace baton

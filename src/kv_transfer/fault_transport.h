// FaultTransport: wraps another transport and injects faults into reads, for
// tests (LevelDB's fault-injecting Env, for KV transfer). Deterministic: the
// same seed injects the same faults in the same order.
//
//   fail    -> the read returns UNAVAILABLE at once
//   delay   -> the read starts after delay_ms (may then miss its deadline)
//   drop    -> the read never completes: it returns at its deadline
//              (DEADLINE_EXCEEDED) or when cancelled
//   corrupt -> the read completes, then one byte of one local block is
//              flipped (caught by checksums)
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>

#include "kv_transfer/transport.h"

namespace baton {

enum class FaultKind { kNone, kFail, kDelay, kDrop, kCorrupt };

Result<FaultKind> parse_fault_kind(const std::string& name);  // none|fail|delay|drop|corrupt

struct FaultSpec {
  FaultKind kind = FaultKind::kNone;
  double probability = 1.0;  // of each read being hit
  int64_t delay_ms = 0;      // kDelay
  uint64_t seed = 1;
};

class FaultTransport : public Transport {
 public:
  FaultTransport(std::unique_ptr<Transport> inner, FaultSpec spec);

  std::string name() const override { return inner_->name(); }
  TransportCaps caps() const override { return inner_->caps(); }
  Status register_local(const KvRegionDesc& region, PeerDescriptor& desc) override;
  Result<std::unique_ptr<PeerLink>> connect(const PeerDescriptor& remote) override;
  void set_kv_secret(std::shared_ptr<const KvSecret> secret) override { inner_->set_kv_secret(std::move(secret)); }

  // Changes the fault for reads from now on (links already open included).
  void set_spec(const FaultSpec& spec);
  int64_t num_injected() const { return state_->num_injected.load(); }

  struct State {
    std::mutex mu;
    FaultSpec spec;
    std::mt19937_64 rng;
    std::atomic<int64_t> num_injected{0};
    KvRegionDesc local;

    // Draws whether this read is hit; returns the fault to apply (kNone if not).
    FaultSpec draw(uint64_t* corrupt_pick);
  };

 private:
  std::unique_ptr<Transport> inner_;
  std::shared_ptr<State> state_;
};

}  // namespace baton

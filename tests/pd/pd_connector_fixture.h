// In-process PD connectors for unit tests: host KV caches, a fake clock both
// roles share, and waits on observable state (never a fixed sleep).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kv_transfer/fault_transport.h"
#include "kv_transfer/local_transport.h"
#include "pd/decode_kv_connector.h"
#include "pd/prefill_kv_connector.h"

namespace baton::testing {

// 2 layers, 2 KV heads, head_dim 8, block 4 tokens, F16: 1 KiB blocks.
inline KvLayout pd_test_layout() {
  KvLayout l;
  l.num_layers = 2;
  l.num_kv_heads = 2;
  l.head_dim = 8;
  l.block_size = 4;
  l.num_blocks = 32;
  l.dtype = DType::kF16;
  return l;
}

// A backend's host KV cache; block b is filled with byte (fill + b).
struct HostKv {
  std::vector<uint8_t> bytes;
  KvMemory memory;
  explicit HostKv(int fill) : bytes(pd_test_layout().total_bytes()) {
    memory.base = bytes.data();
    memory.layout = pd_test_layout();
    const size_t block_bytes = memory.layout.block_bytes();
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(fill + static_cast<int>(i / block_bytes));
  }
  const uint8_t* block(int id) const { return bytes.data() + static_cast<size_t>(id) * memory.layout.block_bytes(); }
  bool block_filled(int id, uint8_t value) const {
    for (size_t i = 0; i < memory.layout.block_bytes(); ++i) {
      if (block(id)[i] != value) return false;
    }
    return true;
  }
};

// Steady and wall time that move only when the test says.
class FakeClock {
 public:
  void advance_ms(int64_t ms) { offset_ms_ += ms; }
  PdClock clock() {
    PdClock c;
    c.steady_now = [this] { return base_ + std::chrono::milliseconds(offset_ms_.load()); };
    c.wall_now_ms = [this] { return kWallBaseMs + offset_ms_.load(); };
    return c;
  }

 private:
  static constexpr int64_t kWallBaseMs = 1'800'000'000'000;
  const TimePoint base_ = SteadyClock::now();
  std::atomic<int64_t> offset_ms_{0};
};

inline PdConnectorOptions pd_options(PdRole role, const std::string& engine_id, FakeClock& clock) {
  PdConnectorOptions o;
  o.role = role;
  o.engine_id = engine_id;
  o.model = "m";
  o.transport = "local";
  o.lease_ms = 30000;
  o.load_timeout_ms = 20000;
  o.clock = clock.clock();
  return o;
}

// A prefill and a decode connector in this process over one transport
// (local, or tcp on loopback, where the prefill's agent checks every read's
// lease token); `decode_transport` replaces the decode's own (a FaultTransport).
struct PdPair {
  FakeClock clock;
  HostKv prefill_kv{0x10};
  HostKv decode_kv{0x80};
  std::shared_ptr<PrefillKvConnector> prefill;
  std::shared_ptr<DecodeKvConnector> decode;

  Status open(const std::string& transport, std::unique_ptr<Transport> decode_transport = nullptr,
              const std::function<void(PdConnectorOptions&)>& adjust_decode = nullptr) {
    PdConnectorOptions p = pd_options(PdRole::kPrefill, "prefill-0", clock);
    p.transport = transport;
    BATON_ASSIGN_OR_RETURN(prefill, PrefillKvConnector::create(prefill_kv.memory, p));
    PdConnectorOptions d = pd_options(PdRole::kDecode, "decode-0", clock);
    d.transport = transport;
    if (adjust_decode) adjust_decode(d);
    BATON_ASSIGN_OR_RETURN(decode, DecodeKvConnector::create(decode_kv.memory, d, std::move(decode_transport)));
    return Status::ok();
  }
  ~PdPair() {
    if (decode) decode->stop();
    if (prefill) prefill->stop();
  }
};

// Wakes a waiting test when the connector queues an event.
class EventWaiter {
 public:
  explicit EventWaiter(KvConnector& connector) : connector_(connector) {
    connector_.set_wakeup([this] {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    });
  }
  ~EventWaiter() { connector_.set_wakeup(nullptr); }
  // Polls until `done` holds for what poll() returned so far (10 s at most).
  bool poll_until(KvConnectorEvents& all, const std::function<bool(const KvConnectorEvents&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      KvConnectorEvents ev = connector_.poll();
      for (auto& r : ev.loads_done) all.loads_done.push_back(std::move(r));
      for (auto& b : ev.blocks_to_release) all.blocks_to_release.push_back(std::move(b));
      if (done(all)) return true;
      if (cv_.wait_until(lock, deadline, [&] { return connector_.has_events(); }) == false) return done(all);
    }
  }
  // The result of one load.
  Status wait_load(const std::string& request_id) {
    KvConnectorEvents all;
    auto has = [&](const KvConnectorEvents& e) {
      for (const auto& r : e.loads_done) {
        if (r.request_id == request_id) return true;
      }
      return false;
    };
    if (!poll_until(all, has)) return deadline_exceeded("no result for load '{}'", request_id);
    for (const auto& r : all.loads_done) {
      if (r.request_id == request_id) return r.status;
    }
    return internal_error("unreachable");
  }

 private:
  KvConnector& connector_;
  std::mutex mu_;
  std::condition_variable cv_;
};

// Waits (10 s at most) until `pred` holds; it reads state another thread sets.
inline bool wait_until(const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a poll interval, not an ordering
  }
  return true;
}

// The load of a decode request of `num_prompt_tokens` whose prompt lands in
// local blocks `local_blocks`, `num_local_tokens` of them already cached.
inline KvLoadRequest load_of(const std::string& id, const Json& params, std::vector<int> local_blocks,
                             int num_prompt_tokens, int num_local_tokens = 0) {
  KvLoadRequest l;
  l.request_id = id;
  l.kv_transfer_params = params;
  l.local_block_ids = std::move(local_blocks);
  l.num_prompt_tokens = num_prompt_tokens;
  l.num_local_tokens = num_local_tokens;
  l.num_tokens_to_load = num_prompt_tokens - 1;
  return l;
}

}  // namespace baton::testing

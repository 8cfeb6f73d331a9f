// A prefill engine (with its KV agent) and a decode engine in one process.
#pragma once

// Tests fill option structs with designated initializers, leaving defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kv_transfer/kv_test_util.h"
#include "kv_transfer/transfer_engine.h"
#include "kv_transfer/transport_registry.h"
#include "kv_transfer/ucx_transport.h"

namespace baton::testing {

struct DoneLog {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> events;  // (peer, request)
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return events.size();
  }
};

inline std::unique_ptr<TransferEngine> make_engine(std::unique_ptr<Transport> transport, const std::string& id,
                                                   bool checksum = false) {
  TransferEngineOptions opts;
  opts.engine_id = id;
  opts.model = "tiny";
  opts.checksum = checksum;
  opts.num_workers = 4;
  opts.default_timeout_ms = 10000;
  auto engine = TransferEngine::create(std::move(transport), opts);
  EXPECT_TRUE(engine.is_ok()) << engine.status().to_string();
  return std::move(engine).value();
}

// A transport by registry name, or "ucx_tcp" / "ucx_sm": the ucx transport
// limited to UCX's tcp or shared-memory transports (UCX_TLS), as CI runs it.
inline Result<std::unique_ptr<Transport>> make_test_transport(const std::string& name) {
  if (name.rfind("ucx_", 0) == 0) {
    return std::unique_ptr<Transport>(std::make_unique<UcxTransport>(UcxTransportOptions{.tls = name.substr(4)}));
  }
  return make_transport(name);
}

inline std::unique_ptr<TransferEngine> make_engine(const std::string& transport, const std::string& id,
                                                   bool checksum = false) {
  auto t = make_test_transport(transport);
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return make_engine(std::move(t).value(), id, checksum);
}

// Starts `engine` as a prefill side serving `region`; done events go to log.
inline void serve(TransferEngine& engine, const TestRegion& region, DoneLog* log) {
  ASSERT_TRUE(engine.register_memory(region.desc()).is_ok());
  Status st = engine.start_agent([log](const std::string& peer, const std::string& request) {
    if (log == nullptr) return;
    std::lock_guard<std::mutex> lock(log->mu);
    log->events.emplace_back(peer, request);
  });
  ASSERT_TRUE(st.is_ok()) << st.to_string();
}

}  // namespace baton::testing

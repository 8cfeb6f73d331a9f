#include "pd/pd_transfer.h"

#include <algorithm>

#include "common/log.h"
#include "kv_transfer/fault_transport.h"
#include "kv_transfer/transport_registry.h"

namespace baton {

namespace {

constexpr int64_t kMinLoadTimeoutMs = 10000;  // a pull's limit: the lease length, at least this

Result<FaultSpec> parse_fault(const std::string& text) {
  FaultSpec spec;
  if (text.rfind("delay_ms=", 0) == 0) {
    spec.kind = FaultKind::kDelay;
    try {
      spec.delay_ms = std::stoll(text.substr(9));
    } catch (const std::exception&) {
      return invalid_argument("--kv-fault: bad delay in '{}' (expected delay_ms=N)", text);
    }
    if (spec.delay_ms < 0) return invalid_argument("--kv-fault: negative delay in '{}'", text);
    return spec;
  }
  BATON_ASSIGN_OR_RETURN(spec.kind, parse_fault_kind(text));
  return spec;
}

TransferEngineOptions engine_options(const PdConnectorOptions& o) {
  TransferEngineOptions to;
  to.engine_id = o.engine_id;
  to.model = o.model;
  to.num_workers = o.num_loaders;
  to.checksum = o.checksum;
  // A pull renews the lease while it runs, so its own limit may exceed it.
  to.default_timeout_ms = o.load_timeout_ms > 0 ? o.load_timeout_ms : std::max<int64_t>(o.lease_ms, kMinLoadTimeoutMs);
  to.secret = o.secret;
  to.agent.host = o.host;
  to.agent.port = o.kv_port;
  to.agent.max_connections = o.agent_max_connections;
  to.agent.num_workers = o.agent_workers;
  to.agent.idle_timeout_ms = o.agent_idle_timeout_ms;
  to.agent.frame_timeout_ms = o.agent_frame_timeout_ms;
  return to;
}

}  // namespace

Result<PdTransfer> PdTransfer::open(const KvMemory& memory, const PdConnectorOptions& options,
                                    std::unique_ptr<Transport> transport, const PdAgentHooks* hooks) {
  PdTransfer t;
  KvRegionDesc region = KvRegionDesc::of(memory);
  const bool tensor_parallel = memory.tp_layout().tp_size > 1;
  if (memory.on_device && (options.transport == "tcp" || tensor_parallel)) {
    // tcp stages device KV through the host; a tensor-parallel device cache relayouts on the device.
    BATON_ASSIGN_OR_RETURN(t.copier, make_device_copier(memory.device_id));
  }
  if (tensor_parallel) {
    // Peers exchange every KV head once: the region is in the wire layout.
    const bool shared = hooks != nullptr && options.transport == "shm";
    BATON_ASSIGN_OR_RETURN(t.relayout, TpKvRelayout::create(memory, shared, t.copier.get()));
    region.base = t.relayout->data();
    region.layout = t.relayout->wire_layout();
    region.shm_name = t.relayout->shm_name();
  } else if (hooks != nullptr && options.transport == "shm" && !memory.on_device) {
    // Peers map the region: serve it from a shared-memory mirror.
    BATON_ASSIGN_OR_RETURN(t.mirror, ShmKvMirror::create(memory));
    region.base = t.mirror->data();
    region.shm_name = t.mirror->name();
  }
  if (memory.on_device && options.transport == "tcp") region.copier = t.copier.get();
  if (!transport) {
    BATON_ASSIGN_OR_RETURN(transport, make_transport(options.transport));
  }
  if (!options.fault.empty()) {
    BATON_ASSIGN_OR_RETURN(FaultSpec spec, parse_fault(options.fault));
    BATON_LOG_WARN("KV connector: injecting '{}' faults into every KV read (test only)", options.fault);
    transport = std::make_unique<FaultTransport>(std::move(transport), spec);
  }
  TransferEngineOptions to = engine_options(options);
  if (hooks != nullptr) {
    to.agent.check_grant = hooks->check_grant;
    to.agent.on_renew = hooks->on_renew;
    to.agent.on_progress = hooks->on_progress;
  }
  BATON_ASSIGN_OR_RETURN(t.engine, TransferEngine::create(std::move(transport), to));
  BATON_RETURN_IF_ERROR(t.engine->register_memory(region).with_context("registering the KV cache"));
  if (hooks != nullptr) {
    BATON_RETURN_IF_ERROR(
        t.engine->start_agent(hooks->on_done)
            .with_context(fmt::format("starting the KV agent on {}:{}", options.host, options.kv_port)));
  }
  return t;
}

}  // namespace baton

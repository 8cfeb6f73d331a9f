#include "instance/kv_connector_setup.h"

#include <unistd.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <random>

#include "common/log.h"
#include "kv_transfer/checksum.h"
#include "kv_transfer/kv_agent.h"
#include "kv_transfer/kv_secret.h"
#include "kv_transfer/ucx_inventory.h"

namespace baton::instance {

namespace {

// The model's identity for KV peers: a hash of its config.json (the layout
// itself is checked separately, field by field).
std::string model_identity(const std::string& model_dir) {
  std::ifstream in(std::filesystem::path(model_dir) / "config.json", std::ios::binary);
  if (!in) return "";
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return fmt::format("config-{:016x}", block_checksum(text.data(), text.size()));
}

// --kv-require: refuses a KV path of another class before anything starts.
Status apply_kv_require(const PdOptions& pd) {
  if (pd.kv_require.empty()) return Status::ok();
  std::vector<UcxResource> resources;
  if (pd.kv_transport == "ucx") {
    BATON_ASSIGN_OR_RETURN(resources, list_ucx_resources());
  }
  const char* tls_env = std::getenv("UCX_TLS");
  BATON_ASSIGN_OR_RETURN(KvRequirement req,
                         check_kv_require(pd.kv_transport, pd.kv_require, tls_env ? tls_env : "", resources));
  if (!req.ucx_tls.empty()) {
    ::setenv("UCX_TLS", req.ucx_tls.c_str(), 1);  // read by every UCX context this process creates
    BATON_LOG_INFO("--kv-require {}: UCX confined to UCX_TLS={}", pd.kv_require, req.ucx_tls);
  }
  return Status::ok();
}

}  // namespace

Result<PdConnectorOptions> kv_connector_options(PdRole role, const PdOptions& pd, const std::string& host) {
  PdConnectorOptions o;
  o.role = role;
  o.transport = pd.kv_transport;
  BATON_RETURN_IF_ERROR(apply_kv_require(pd));
  BATON_ASSIGN_OR_RETURN(o.secret, KvSecret::load(pd.kv_secret_file));
  if (!pd.kv_host.empty()) {
    if (!o.secret && !is_loopback_host(pd.kv_host)) {
      return invalid_argument(
          "--kv-host {} is not a loopback address, and there is no KV secret: anyone who reaches it could read "
          "every request's KV cache. Give a secret (--kv-secret-file PATH or ${}) or use 127.0.0.1",
          pd.kv_host, kKvSecretEnv);
    }
    o.host = pd.kv_host;
  } else if (o.secret || is_loopback_host(host)) {
    o.host = host;
  } else {
    o.host = "127.0.0.1";
    if (role == PdRole::kPrefill) {
      BATON_LOG_WARN(
          "no KV secret: the KV agent listens on 127.0.0.1 only, not on --host {} (decode instances "
          "on other hosts need --kv-secret-file on both sides)",
          host);
    }
  }
  o.agent_max_connections = pd.kv_max_connections;
  o.agent_workers = pd.kv_agent_workers;
  o.agent_idle_timeout_ms = pd.kv_idle_timeout_ms;
  o.agent_frame_timeout_ms = pd.kv_frame_timeout_ms;
  o.kv_port = pd.kv_port;
  o.lease_ms = pd.kv_lease_ms;
  BATON_ASSIGN_OR_RETURN(o.failure_policy, parse_kv_load_failure_policy(pd.kv_load_failure_policy));
  o.checksum = pd.kv_checksum;
  o.fault = pd.kv_fault;
  std::random_device rd;
  o.engine_id = fmt::format("{}-{}-{}-{:08x}", pd.role, o.host, ::getpid(), rd());
  return o;
}

Result<std::shared_ptr<PdKvConnector>> make_kv_connector(PdConnectorOptions o, const KvMemory& memory,
                                                         const std::string& model_dir, const std::string& model_name) {
  o.model = model_identity(model_dir);
  o.metric_labels = {{"model_name", model_name.empty() ? model_dir : model_name}};
  return create_pd_connector(memory, o);
}

}  // namespace baton::instance

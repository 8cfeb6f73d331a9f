#include "cli/pd_serve.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <utility>  // before asio: Boost 1.74 awaitable.hpp needs std::exchange

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/log.h"
#include "kv_transfer/checksum.h"
#include "kv_transfer/kv_agent.h"
#include "kv_transfer/kv_secret.h"

namespace baton::cli {

namespace {

// The model's identity for KV peers: a hash of its config.json (the layout
// itself is checked separately, field by field).
std::string model_identity(const std::string& model_dir) {
  std::ifstream in(std::filesystem::path(model_dir) / "config.json", std::ios::binary);
  if (!in) return "";
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return fmt::format("config-{:016x}", block_checksum(text.data(), text.size()));
}

}  // namespace

void add_pd_flags(CLI::App& app, PdFlags& f) {
  app.add_option("--role", f.role, "agg (everything), prefill or decode (PD disaggregation)")
      ->check(CLI::IsMember({"agg", "prefill", "decode"}))
      ->capture_default_str();
  app.add_option("--kv-transport", f.kv_transport, "KV transfer between PD instances: local, shm, tcp, cuda_ipc")
      ->capture_default_str();
  app.add_option("--kv-port", f.kv_port, "Prefill: port of the KV agent (0 picks a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--kv-host", f.kv_host,
                 "Prefill: the KV agent's address (default: --host with a KV secret, else 127.0.0.1; a "
                 "non-loopback address needs a secret)");
  app.add_option("--kv-secret-file", f.kv_secret_file,
                 "File holding the KV secret (mode 600) that PD peers authenticate with and sign "
                 "kv_transfer_params with (else $BATON_KV_SECRET; without one, KV stays on loopback)");
  app.add_option("--kv-max-connections", f.kv_max_connections, "Prefill: KV agent connections open at once")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--kv-agent-workers", f.kv_agent_workers, "Prefill: KV agent threads answering requests")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--kv-idle-timeout-ms", f.kv_idle_timeout_ms,
                 "Prefill: the KV agent closes a connection idle this long")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kv-frame-timeout-ms", f.kv_frame_timeout_ms,
                 "Prefill: a KV request frame (or the handshake) must arrive whole within this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kv-lease-ms", f.kv_lease_ms,
                 "Prefill: how long a finished prompt's KV blocks wait for a decode instance")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kv-load-failure-policy", f.kv_load_failure_policy,
                 "Decode: when a KV pull fails, fail the request or recompute the prompt locally")
      ->check(CLI::IsMember({"fail", "recompute"}))
      ->capture_default_str();
  app.add_flag("--kv-checksum", f.kv_checksum, "Decode: verify every pulled KV block (xxHash64)");
  app.add_option("--discovery", f.discovery,
                 "etcd://HOST:PORT: register this instance (role, URL, model); on SIGTERM leave first")
      ->capture_default_str();
  app.add_option("--advertise-url", f.advertise_url, "URL routers reach this instance at (default: its own)");
  app.add_option("--leave-grace-s", f.leave_grace_s,
                 "On SIGTERM with --discovery: keep serving this long after leaving, so routers see it")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--kv-fault", f.kv_fault, "Tests only: inject fail|corrupt|drop|delay_ms=N into KV reads")
      ->group("");
}

Result<PdEngine> build_pd_engine(const EngineFlags& engine, const PdFlags& pd, const std::string& host,
                                 const std::string& model_name) {
  BATON_ASSIGN_OR_RETURN(PdRole role, parse_pd_role(pd.role));
  PdEngine out;
  if (role == PdRole::kAgg) {
    BATON_ASSIGN_OR_RETURN(out.loaded, build_engine(engine));
    return out;
  }
  PdConnectorOptions o;
  o.role = role;
  o.transport = pd.kv_transport;
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
      BATON_LOG_WARN("no KV secret: the KV agent listens on 127.0.0.1 only, not on --host {} (decode instances "
                     "on other hosts need --kv-secret-file on both sides)", host);
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
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<LoadedCore> core, build_engine_core(engine));
  o.model = model_identity(core->model_dir);
  o.metric_labels = {{"model_name", model_name.empty() ? core->model_dir : model_name}};
  BATON_ASSIGN_OR_RETURN(out.connector, create_pd_connector(core->core->backend().kv_memory(), o));
  core->core->set_kv_connector(out.connector);
  out.loaded = std::make_unique<LoadedEngine>();
  out.loaded->model_dir = core->model_dir;
  out.loaded->checkpoint = std::move(core->checkpoint);
  out.loaded->tokenizer = std::move(core->tokenizer);
  out.loaded->engine = std::make_unique<AsyncEngine>(std::move(core->core));
  return out;
}

Result<std::unique_ptr<discovery::Registration>> register_instance(const PdFlags& pd, const std::string& url,
                                                                   const std::string& model_name) {
  if (pd.discovery.empty()) return std::unique_ptr<discovery::Registration>();
  discovery::InstanceRecord record;
  record.url = pd.advertise_url.empty() ? url : pd.advertise_url;
  record.role = pd.role;
  record.model = model_name;
  auto reg = discovery::Registration::start(pd.discovery, record);
  if (!reg.is_ok()) return reg.status().with_context("registering with " + pd.discovery);
  return std::move(reg).value();
}

struct SignalWaiter::Impl {
  boost::asio::io_context ioc;
  boost::asio::signal_set signals{ioc, SIGINT, SIGTERM};
};

SignalWaiter::SignalWaiter() : impl_(std::make_unique<Impl>()) {}
SignalWaiter::~SignalWaiter() = default;

int SignalWaiter::wait() {
  int received = 0;
  impl_->signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) received = sig;
  });
  impl_->ioc.run();
  return received;
}

}  // namespace baton::cli

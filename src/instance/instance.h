// One whole serving instance, built in-process from one options struct:
// backend and engine (instance/engine_builder.h), the PD KV connector for a
// prefill or decode role (instance/kv_connector_setup.h), the OpenAI HTTP
// server, and its discovery registration. `baton serve` fills the options
// from flags and calls Instance::start; tests call it directly, so agg,
// prefill and decode instances can share one test process.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "discovery/registration.h"
#include "instance/engine_builder.h"
#include "instance/kv_connector_setup.h"
#include "instance/role_switcher.h"
#include "instance/signal_waiter.h"
#include "server/api_server.h"
#include "server/tokenizer_codec.h"

namespace baton::instance {

// The HTTP server and the API in front of the engine.
struct ServerConfig {
  std::string served_model_name;  // default: default_served_model_name(engine.model)
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 picks a free one (see Instance::port)
  std::string api_key;
  std::string tool_call_parser = "auto";  // a format name, none, or auto (the chat template's)
  int64_t max_body_bytes = 0;             // 0: request_body_limit(max_model_len)
  int max_connections = 4096;
  double shutdown_grace_s = 30.0;
  double header_timeout_s = 10.0;
  double idle_timeout_s = 60.0;
  int num_io_threads = 2;
};

// The model id served when none is given: as vLLM, the --model argument as
// given (a Hub-style name or a path, not resolved); "default" for the
// embedded default model (no --model).
std::string default_served_model_name(const std::string& model_arg);

struct InstanceOptions {
  EngineBuildOptions engine;
  PdOptions pd;
  ServerConfig server;
  // Catch SIGINT/SIGTERM from start() on, for run_until_signal (the CLI).
  bool handle_signals = false;
};

class Instance {
 public:
  // Builds everything, binds the server and (with pd.discovery) registers.
  static Result<std::unique_ptr<Instance>> start(const InstanceOptions& options);
  ~Instance();  // stop()

  int port() const { return server_->port(); }
  std::string url() const { return server_->url(); }
  // The prefill's KV agent port; 0 for other roles.
  int kv_port() const {
    PdKvConnector* c = connector();
    return c ? c->kv_port() : 0;
  }
  // The current role (with pd.role_switching it can change).
  PdRole role() const { return switcher_ ? switcher_->role() : role_; }
  const std::string& model_dir() const { return engine_->model_dir; }
  const std::string& served_model_name() const { return served_model_name_; }
  AsyncEngine& engine() { return *engine_->engine; }
  ApiServer& server() { return *server_; }
  // The current role's KV connector; null for agg.
  PdKvConnector* connector() const { return role_connector_ ? role_connector_->current().get() : connector_.get(); }
  // With pd.role_switching: drains and flips the role (GET/POST /v1/admin/role).
  RoleSwitcher* role_switcher() { return switcher_.get(); }

  // Needs handle_signals. Blocks until SIGINT or SIGTERM, then (registered)
  // leaves discovery, serves pd.leave_grace_s more, and stops. An engine
  // that stops for good (fatal_error) raises SIGTERM itself.
  void run_until_signal();
  // Ok, or the error that stopped the engine for good (a tensor parallel
  // rank failed or hung: Backend::health), seen by the watchdog, which checks
  // every kWatchdogPeriod. /health then answers 503 and requests are refused.
  // With handle_signals the instance then stops as on SIGTERM, and if that
  // has not ended the process within shutdown_grace_s + kHardExitMargin (an
  // engine thread stuck in a hung rank cannot be joined), it exits with
  // status 1.
  Status fatal_error() const;
  static constexpr std::chrono::milliseconds kWatchdogPeriod{100};
  static constexpr std::chrono::seconds kHardExitMargin{5};
  // Graceful server shutdown (in-flight requests get server.shutdown_grace_s),
  // then the engine and the connector stop. Idempotent.
  void stop();

 private:
  Instance() = default;
  Status start_parts(const InstanceOptions& options);
  // Builds the engine with the KV connector its role(s) need.
  Status start_engine(const InstanceOptions& options);
  void watch_engine();

  InstanceOptions options_;
  PdRole role_ = PdRole::kAgg;
  std::string served_model_name_;
  std::unique_ptr<LoadedEngine> engine_;
  std::shared_ptr<PdKvConnector> connector_;         // a fixed prefill or decode role
  std::shared_ptr<RoleKvConnector> role_connector_;  // pd.role_switching: the current role's
  std::shared_ptr<RoleSwitcher> switcher_;           // pd.role_switching
  std::unique_ptr<TokenizerCodec> codec_;
  std::unique_ptr<SignalWaiter> signals_;  // handle_signals with discovery
  std::unique_ptr<ApiServer> server_;
  std::mutex registration_mu_;  // a role switch re-registers from its own thread
  std::unique_ptr<discovery::Registration> registration_;
  bool stopped_ = false;

  mutable std::mutex watchdog_mu_;
  std::condition_variable watchdog_cv_;
  bool watchdog_stop_ = false;
  Status fatal_;
  std::thread watchdog_;
};

}  // namespace baton::instance

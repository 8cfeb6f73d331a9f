// `baton serve`: one engine behind the OpenAI-compatible HTTP API (see
// server/api_server.h). Runs until SIGTERM or SIGINT, then drains.
#include <sys/resource.h>

#include <csignal>
#include <iostream>
#include <thread>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/pd_serve.h"
#include "common/log.h"
#include "server/api_server.h"
#include "server/tokenizer_codec.h"

namespace baton::cli {
namespace {

struct ServeArgs {
  EngineFlags engine;
  PdFlags pd;
  std::string served_model_name;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  int64_t max_body_bytes = 1 << 20;
  double shutdown_grace_s = 30.0;
  double header_timeout_s = 10.0;
  double idle_timeout_s = 60.0;
  int num_io_threads = 2;
};

// Many concurrent connections need many descriptors: raise the soft limit.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int run_serve(const ServeArgs& a) {
  raise_fd_limit();
  auto built = build_pd_engine(a.engine, a.pd, a.host, a.served_model_name);
  if (!built.is_ok()) {
    std::cerr << "error: " << built.status().message() << "\n";
    return 1;
  }
  LoadedEngine& le = *built->loaded;
  std::shared_ptr<TransferKvConnector> connector = built->connector;
  TokenizerCodec codec(le.tokenizer, le.checkpoint->config().vocab_size);
  ApiServerOptions o;
  o.http.host = a.host;
  o.http.port = a.port;
  o.http.num_io_threads = a.num_io_threads;
  o.http.limits.max_body_bytes = static_cast<size_t>(a.max_body_bytes);
  o.http.limits.header_timeout_s = a.header_timeout_s;
  o.http.limits.idle_timeout_s = a.idle_timeout_s;
  o.service.served_model_name = a.served_model_name.empty() ? le.model_dir : a.served_model_name;
  o.service.model_path = le.model_dir;
  o.service.api_key = a.api_key;
  if (connector) o.service.kv_release = [connector](const Json& params) { return connector->release_lease(params); };
  o.shutdown_grace_s = a.shutdown_grace_s;
  // With --discovery, this command catches the signals itself: it leaves the
  // registry before the server's graceful shutdown.
  o.handle_signals = a.pd.discovery.empty();
  std::unique_ptr<SignalWaiter> signals;
  if (!o.handle_signals) signals = std::make_unique<SignalWaiter>();
  ApiServer server(*le.engine, codec, o);
  if (connector) connector->attach_metrics(server.service().metrics().registry());
  if (Status st = server.start(); !st.is_ok()) {
    std::cerr << "error: " << st.message() << "\n";
    return 1;
  }
  BATON_LOG_INFO("serving {} (max_model_len {}) at {}", o.service.served_model_name, le.engine->max_model_len(),
                 server.url());
  auto registration = register_instance(a.pd, server.url(), o.service.served_model_name);
  if (!registration.is_ok()) {
    std::cerr << "error: " << registration.status().message() << "\n";
    server.shutdown();
    return 1;
  }
  // A machine-readable line for scripts and tests that start the server on port 0.
  std::cout << "listening on " << server.url() << std::endl;
  if (signals) {
    const int sig = signals->wait();
    // Leave first, keep serving while routers notice, then drain as usual:
    // no request fails on an instance that leaves gracefully.
    BATON_LOG_INFO("received {}: leaving {} and serving {} s more", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                   a.pd.discovery, a.pd.leave_grace_s);
    if (*registration) (*registration)->deregister();
    std::this_thread::sleep_for(std::chrono::duration<double>(a.pd.leave_grace_s));
    server.shutdown();
  } else {
    server.run_until_signal();
  }
  le.engine->shutdown(AsyncEngine::ShutdownMode::kAbort);
  if (connector) connector->stop();
  return 0;
}

RunFn setup(CLI::App& sub) {
  auto a = std::make_shared<ServeArgs>();
  add_engine_flags(sub, a->engine);
  add_pd_flags(sub, a->pd);
  sub.add_option("--served-model-name", a->served_model_name,
                 "Model name in the API (default: the model folder)");
  sub.add_option("--host", a->host, "Address to bind (loopback unless told otherwise)")->capture_default_str();
  sub.add_option("--port", a->port, "Port (0 picks a free one; the URL is printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sub.add_option("--api-key", a->api_key, "Require 'Authorization: Bearer KEY' on /v1 routes");
  sub.add_option("--max-body-bytes", a->max_body_bytes, "Largest request body (413 beyond)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--shutdown-grace-s", a->shutdown_grace_s,
                 "On SIGTERM/SIGINT, how long running requests may finish before being aborted")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--header-timeout-s", a->header_timeout_s, "A request must arrive within this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--idle-timeout-s", a->idle_timeout_s, "Keep-alive connections idle longer are closed")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--num-io-threads", a->num_io_threads, "HTTP I/O threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  return [a] { return run_serve(*a); };
}

const Command kCmd("serve", "Serve a model over the OpenAI-compatible HTTP API", &setup);

}  // namespace
}  // namespace baton::cli

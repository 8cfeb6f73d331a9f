// `baton serve`: one engine behind the OpenAI-compatible HTTP API (see
// server/api_server.h). Runs until SIGTERM or SIGINT, then drains.
#include <csignal>
#include <iostream>
#include <thread>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/pd_serve.h"
#include "common/log.h"
#include "server/api_server.h"
#include "server/tokenizer_codec.h"
#include "server/tool_call_parser.h"

namespace baton::cli {
namespace {

struct ServeArgs {
  EngineFlags engine;
  PdFlags pd;
  std::string served_model_name;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  std::string tool_call_parser = "auto";
  int64_t max_body_bytes = 0;  // 0: request_body_limit(max_model_len)
  int max_connections = 4096;
  double shutdown_grace_s = 30.0;
  double header_timeout_s = 10.0;
  double idle_timeout_s = 60.0;
  int num_io_threads = 2;
};

// --tool-call-parser: a format by name, or (auto) the one the model's chat
// template (tokenizer_config.json or chat_template.jinja) asks for.
Result<ToolCallFormat> resolve_tool_call_parser(const std::string& name, const std::string& model_dir) {
  if (name != "auto") return parse_tool_call_format(name);
  std::string source;
  if (auto jinja = read_file(model_dir + "/chat_template.jinja"); jinja.is_ok()) source = *jinja;
  if (auto config = read_json_file(model_dir + "/tokenizer_config.json"); config.is_ok() && config->is_object()) {
    auto t = config->find("chat_template");
    if (t != config->end()) source += t->is_string() ? t->get<std::string>() : dump_json(*t);
  }
  ToolCallFormat format = detect_tool_call_format(source);
  if (format != ToolCallFormat::kNone) BATON_LOG_INFO("tool calls: {} format", tool_call_format_name(format));
  return format;
}

int run_serve(const ServeArgs& a) {
  // One descriptor per connection, and a margin for the engine, KV transfer and logs.
  raise_fd_limit(static_cast<long>(a.max_connections) + 256);
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
  o.http.limits.max_body_bytes = a.max_body_bytes > 0 ? static_cast<size_t>(a.max_body_bytes)
                                                      : request_body_limit(le.engine->max_model_len());
  o.http.max_connections = a.max_connections;
  o.http.limits.header_timeout_s = a.header_timeout_s;
  o.http.limits.idle_timeout_s = a.idle_timeout_s;
  o.service.served_model_name = a.served_model_name.empty() ? le.model_dir : a.served_model_name;
  o.service.model_path = le.model_dir;
  o.service.api_key = a.api_key;
  auto tool_format = resolve_tool_call_parser(a.tool_call_parser, le.model_dir);
  if (!tool_format.is_ok()) {
    std::cerr << "error: " << tool_format.status().message() << "\n";
    return 1;
  }
  o.service.tool_call_format = *tool_format;
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
  BATON_LOG_INFO("serving {} (max_model_len {}) at {}; bodies up to {} bytes, {} connections", o.service.served_model_name,
                 le.engine->max_model_len(), server.url(), o.http.limits.max_body_bytes, o.http.max_connections);
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
  sub.add_option("--tool-call-parser", a->tool_call_parser,
                 "How tool calls are read out of chat outputs: hermes, llama3_json, deepseek_v3, none, or auto "
                 "(the format the model's chat template writes)")
      ->capture_default_str();
  sub.add_option("--max-body-bytes", a->max_body_bytes,
                 "Largest request body, 413 beyond (0: 1 MiB + 32 bytes per token of --max-model-len, "
                 "so a whole-context prompt fits as text or token ids)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--max-connections", a->max_connections,
                 "Open connections at most; beyond them a new one gets 503 and is closed (0 = no cap)")
      ->check(CLI::NonNegativeNumber)
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

}  // namespace

CommandSpec serve_command() {
  return {"serve", "Serve a model over the OpenAI-compatible HTTP API", &setup};
}

}  // namespace baton::cli

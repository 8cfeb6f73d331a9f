// `baton serve`: one engine behind the OpenAI-compatible HTTP API. The flags
// fill instance::InstanceOptions; the instance layer builds and runs it
// (instance/instance.h). Runs until SIGTERM or SIGINT, then drains. A
// checkpoint with random weights gets a note on stderr (cli/random_weights.h).
#include <iostream>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/pd_serve.h"
#include "cli/random_weights.h"
#include "instance/instance.h"

namespace baton::cli {
namespace {

int run_serve(const instance::InstanceOptions& options) {
  // One descriptor per connection, and a margin for the engine, KV transfer and logs.
  raise_fd_limit(static_cast<long>(options.server.max_connections) + 256);
  auto started = instance::Instance::start(options);
  if (!started.is_ok()) {
    std::cerr << "error: " << started.status().message() << "\n";
    return 1;
  }
  instance::Instance& inst = **started;
  if (auto note = random_weights_note(inst.model_dir())) std::cerr << *note << std::endl;
  // A machine-readable line for scripts and tests that start the server on port 0.
  std::cout << "listening on " << inst.url() << std::endl;
  inst.run_until_signal();
  if (Status fatal = inst.fatal_error(); !fatal.is_ok()) {
    std::cerr << "error: the engine stopped: " << fatal.message() << "\n";
    return 1;
  }
  return 0;
}

RunFn setup(CLI::App& sub) {
  auto a = std::make_shared<instance::InstanceOptions>();
  a->handle_signals = true;
  instance::ServerConfig& s = a->server;
  add_engine_flags(sub, a->engine);
  add_pd_flags(sub, a->pd);
  sub.add_option("--served-model-name", s.served_model_name,
                 "The model id that /v1/models lists and requests name (default, as vLLM: the --model argument as "
                 "given; \"default\" for the embedded model)");
  sub.add_option("--host", s.host, "Address to bind (loopback unless told otherwise)")->capture_default_str();
  sub.add_option("--port", s.port, "Port (0 picks a free one; the URL is printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sub.add_option("--api-key", s.api_key, "Require 'Authorization: Bearer KEY' on /v1 routes");
  sub.add_option("--tool-call-parser", s.tool_call_parser,
                 "How tool calls are read out of chat outputs: hermes, llama3_json, deepseek_v3, none, or auto "
                 "(the format the model's chat template writes)")
      ->capture_default_str();
  sub.add_option("--max-body-bytes", s.max_body_bytes,
                 "Largest request body, 413 beyond (0: 1 MiB + 32 bytes per token of --max-model-len, "
                 "so a whole-context prompt fits as text or token ids)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--max-connections", s.max_connections,
                 "Open connections at most; beyond them a new one gets 503 and is closed (0 = no cap)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--shutdown-grace-s", s.shutdown_grace_s,
                 "On SIGTERM/SIGINT, how long running requests may finish before being aborted")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--header-timeout-s", s.header_timeout_s, "A request must arrive within this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--idle-timeout-s", s.idle_timeout_s, "Keep-alive connections idle longer are closed")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--num-io-threads", s.num_io_threads, "HTTP I/O threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  return [a] { return run_serve(*a); };
}

}  // namespace

CommandSpec serve_command() { return {"serve", "Serve a model over the OpenAI-compatible HTTP API", &setup}; }

}  // namespace baton::cli

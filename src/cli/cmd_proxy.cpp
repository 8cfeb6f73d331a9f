// `baton proxy`: the PD router (or an agg load balancer) serving the OpenAI
// API in front of baton instances. The flags fill instance::RouterOptions;
// the instance layer builds and runs it (instance/router_instance.h).
#include <csignal>
#include <iostream>
#include <utility>  // before asio: Boost 1.74 awaitable.hpp needs std::exchange

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "common/log.h"
#include "instance/router_instance.h"

namespace {

using namespace baton;

int run_proxy(const instance::RouterOptions& o) {
  // Two descriptors per client connection (its own and one upstream), and a margin.
  cli::raise_fd_limit(2L * o.max_connections + 256);
  if (Status st = instance::RouterInstance::check(o); !st.is_ok()) {
    std::cerr << "baton proxy: " << st.message() << "\n";
    return 2;
  }
  auto router = instance::RouterInstance::start(o);
  if (!router.is_ok()) {
    std::cerr << "baton proxy: " << router.status().message() << "\n";
    return 1;
  }
  boost::asio::io_context ioc;
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([](const boost::system::error_code&, int) {});
  ioc.run();
  BATON_LOG_INFO("baton proxy: stopping");
  (*router)->stop();
  return 0;
}

cli::RunFn setup(CLI::App& sub) {
  auto o = std::make_shared<instance::RouterOptions>();
  sub.add_option("--host", o->host, "Address to bind");
  sub.add_option("--port", o->port, "Port to listen on");
  sub.add_option("--mode", o->mode, "pd (prefill then decode) or agg (balance over replicas)")
      ->check(CLI::IsMember({"pd", "agg"}));
  sub.add_option("--prefill", o->prefill, "Prefill instances, URL[,URL...] (pd)");
  sub.add_option("--decode", o->decode, "Decode instances, URL[,URL...] (pd)");
  sub.add_option("--replica", o->replica, "Replicas, URL[,URL...] (agg)");
  sub.add_option("--policy", o->policy,
                 "round_robin, least_loaded, kv_aware (longest cached prefix from the instances' KV events, "
                 "weighed against load) or prefix_aware (a hash of the prompt's first 256 characters)")
      ->capture_default_str();
  sub.add_option("--kv-load-weight", o->kv_load_weight,
                 "kv_aware: how many uncached prompt tokens one request in flight on an instance weighs")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--tokenizer", o->tokenizer,
                 "A model folder with the instances' tokenizer.json: kv_aware and --disagg tokenize text prompts "
                 "as the instances do (without it, only token-id prompts are matched)");
  sub.add_option("--disagg", o->disagg,
                 "pd: always (every request prefills remotely), conditional (--disagg-max-local-prefill-tokens, "
                 "--disagg-max-prefill-queue) or auto (from the instances' measured queues and prefill throughput)")
      ->check(CLI::IsMember({"always", "conditional", "auto"}))
      ->capture_default_str();
  sub.add_option("--disagg-max-local-prefill-tokens", o->disagg_max_local_prefill_tokens,
                 "conditional: a prompt with at most this many tokens uncached on its decode instance prefills there")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--disagg-max-prefill-queue", o->disagg_max_prefill_queue,
                 "conditional: prefill on the decode instance when the prefill instance has more requests waiting")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--disagg-hop-ms", o->disagg_hop_ms,
                 "auto: what a remote prefill adds to a request besides the prefill's queue (exchanges, KV pull)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_flag("--role-control", o->role_control,
               "pd: move instances between prefill and decode as the queues say (instances need --role-switching; "
               "docs/routing.md, \"Roles that follow the load\")");
  sub.add_option("--role-margin", o->role.margin,
                 "Role control: how far one side's pressure (mean waiting requests + KV usage weight) must be over "
                 "the other's")
      ->capture_default_str();
  sub.add_option("--role-hold-s", o->role.hold_s, "Role control: how long the margin must hold before a switch")
      ->capture_default_str();
  sub.add_option("--role-cooldown-s", o->role.cooldown_s, "Role control: after a switch, before the next may start")
      ->capture_default_str();
  sub.add_option("--role-kv-usage-weight", o->role.kv_usage_weight,
                 "Role control: a full KV cache counts as this many waiting requests")
      ->capture_default_str();
  sub.add_option("--role-interval-s", o->role.interval_s, "Role control: seconds between two looks")
      ->capture_default_str();
  sub.add_option("--role-drain-timeout-s", o->role.drain_timeout_s,
                 "Role control: a switch whose drain takes longer fails (the instance keeps its role)")
      ->capture_default_str();
  sub.add_option("--instance-api-key-file", o->instance_api_key_file,
                 "A file holding the instances' --api-key, sent on their KV event streams and admin endpoint");
  sub.add_option("--discovery", o->discovery,
                 "etcd://HOST:PORT: take instances from the etcd registry (joins and leaves live)");
  sub.add_option("--health-interval-s", o->health_interval_s, "Seconds between health checks");
  sub.add_option("--request-timeout-s", o->request_timeout_s, "Deadline of one upstream exchange");
  sub.add_option("--num-io-threads", o->num_io_threads, "Threads serving clients (and as many for upstreams)");
  sub.add_flag("--pd-stream-kv", o->stream_kv,
               "PD: stream the KV (the decode pulls while the prefill computes; docs/pd.md, \"Streamed KV\")");
  sub.add_option("--upstream-first-byte-timeout-s", o->first_byte_timeout_s,
                 "Streamed requests: an instance that sends no response headers within this is given up (0 = off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--upstream-idle-timeout-s", o->idle_timeout_s,
                 "Streamed requests: an instance silent this long mid-stream is given up; baton instances send a "
                 "heartbeat every 5 s (0 = off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--max-model-len", o->max_model_len, "The instances' context length, for the default --max-body-bytes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--max-body-bytes", o->max_body_bytes,
                 "Largest request body, 413 beyond (0: 1 MiB + 32 bytes per token of --max-model-len)")
      ->capture_default_str();
  sub.add_option("--max-connections", o->max_connections,
                 "Open client connections at most; beyond them a new one gets 503 and is closed (0 = no cap)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return [o] { return run_proxy(*o); };
}

}  // namespace

baton::cli::CommandSpec baton::cli::proxy_command() {
  return {"proxy", "Route OpenAI requests over baton instances (PD or agg)", &setup};
}

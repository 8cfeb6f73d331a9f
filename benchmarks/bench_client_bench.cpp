// The benchmark client itself against a minimal fast streaming server (the
// SimServer, in this process on its own I/O thread): can it hold an open-loop
// rate with a small scheduling delay, and keep thousands of streams open?
//
//   BM_ClientRate/R:     R requests/s for 5 s, 4 tokens each, no server delay.
//                        Reports the achieved send rate and the client's p50/p99/max
//                        scheduling delay (send - scheduled arrival).
//   BM_ClientStreams/R:  R requests/s for 7 s, each a stream of 13 tokens 500 ms
//                        apart (6 s long), so about 6 * R streams are open at once.
//                        Reports the peak number of concurrent streams.
// Environment: BATON_BENCH_CLIENT_THREADS (default 1), BATON_BENCH_SERVER_THREADS (default 1).
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/time.h>

#include <cstdlib>

#include "bench/bench_run.h"
#include "bench/sim_server.h"
#include "common/check.h"

namespace baton::bench {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

void raise_fd_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
}

void run_case(benchmark::State& state, double rate, double duration_s, int64_t tokens, double per_token_s) {
  raise_fd_limit();
  SimServerOptions so;
  so.per_token_delay_s = per_token_s;
  so.num_io_threads = env_int("BATON_BENCH_SERVER_THREADS", 1);
  SimServer server(so);
  BATON_CHECK_OK(server.start());
  BenchConfig cfg;
  cfg.workload.kind = "random";
  cfg.workload.input_len = {16, 16};
  cfg.workload.output_len = {tokens, tokens};
  cfg.workload.num_requests = 0;
  cfg.workload.duration_s = duration_s;
  cfg.workload.arrival = {ArrivalKind::kPoisson, rate, 1.0, 7};
  cfg.workload.vocab_size = 32000;
  cfg.load.url = server.url();
  cfg.load.model = "sim";
  cfg.load.vocab_size = 32000;
  cfg.load.num_threads = env_int("BATON_BENCH_CLIENT_THREADS", 1);
  cfg.load.request_timeout_s = 60;
  auto cpu_s = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  for (auto _ : state) {
    double cpu0 = cpu_s();
    auto rep = run_benchmark(cfg);
    double cpu = cpu_s() - cpu0;
    BATON_CHECK(rep.is_ok(), "{}", rep.status().to_string());
    const auto& m = rep->metrics;
    state.counters["target_rps"] = rate;
    state.counters["offered_rps"] = m.offered_rate;
    state.counters["sent_per_s"] = static_cast<double>(m.num_requests) /
                                   (rep->load.records.back().send_s - rep->load.records.front().send_s);
    state.counters["done_rps"] = m.request_throughput;
    state.counters["requests"] = static_cast<double>(m.num_requests);
    state.counters["failed"] = static_cast<double>(m.num_failed);
    state.counters["sched_p50_ms"] = m.scheduling_delay_s.p50 * 1e3;
    state.counters["sched_p99_ms"] = m.scheduling_delay_s.p99 * 1e3;
    state.counters["sched_max_ms"] = m.scheduling_delay_s.max * 1e3;
    state.counters["max_streams"] = static_cast<double>(rep->load.max_in_flight);
    state.counters["server_max_active"] = static_cast<double>(server.max_active_seen());
    state.counters["connections"] = static_cast<double>(rep->load.num_connections_opened);
    state.counters["ttft_p50_ms"] = m.ttft_s.p50 * 1e3;
    // CPU of this process (client and server together) per request and in cores.
    state.counters["cpu_us_per_req"] = cpu / static_cast<double>(rep->load.records.size()) * 1e6;
    state.counters["cpu_cores"] = cpu / rep->load.wall_s;
    for (const auto& [kind, n] : m.errors_by_kind) {
      fprintf(stderr, "errors: %zu x %s (e.g. %s)\n", n, kind.c_str(),
              [&] {
                for (const auto& r : rep->load.records) {
                  if (r.error_kind == kind) return r.error;
                }
                return std::string();
              }()
                  .c_str());
    }
  }
}

void BM_ClientRate(benchmark::State& state) { run_case(state, static_cast<double>(state.range(0)), 5.0, 4, 0.0); }
BENCHMARK(BM_ClientRate)->Arg(1000)->Arg(2000)->Arg(3000)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

void BM_ClientStreams(benchmark::State& state) { run_case(state, static_cast<double>(state.range(0)), 7.0, 13, 0.5); }
BENCHMARK(BM_ClientStreams)->Arg(1000)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace baton::bench

BENCHMARK_MAIN();

// How fast the planner's simulator runs: 10 minutes of traffic at 100 req/s
// (60,000 requests, 1,024 tokens in, 128 out, Poisson) over a 4-GPU
// deployment, agg and 2P2D, with a step-time model of the Llama-3.1-8B shape
// on an H100 (coefficients of the order the profile gives). The target
// (issue 20): under 10 s of one core per simulated deployment.
#include <benchmark/benchmark.h>

#include "bench/workload.h"
#include "planner/cluster_sim.h"

namespace {

using baton::planner::DeploymentSpec;

const baton::bench::Workload& workload() {
  static const baton::bench::Workload w = [] {
    baton::bench::WorkloadOptions o;
    o.input_len = {1024, 1024};
    o.output_len = {128, 128};
    o.num_requests = 60000;
    o.arrival.rate = 100;
    return baton::bench::make_workload(o).value();
  }();
  return w;
}

DeploymentSpec deployment(int agg, int prefill, int decode) {
  baton::planner::SimInstanceOptions o;
  o.num_kv_blocks = 16896;
  o.scheduler.max_num_batched_tokens = 8192;
  o.scheduler.max_num_seqs = 256;
  DeploymentSpec d;
  d.num_agg = agg;
  d.num_prefill = prefill;
  d.num_decode = decode;
  d.agg = d.prefill = d.decode = o;
  return d;
}

void run(benchmark::State& state, const DeploymentSpec& d) {
  // fixed 5.5 ms (weights), 25 us per prefill token, 2e-9 s per attention
  // pair, 20 us per decode sequence, 4 ns per context token.
  const baton::planner::StepTimeModel model(
      baton::planner::StepTimeModel::Coefficients{5.5e-3, 2.5e-5, 2e-9, 2e-5, 4e-9});
  const baton::planner::TransferModel transfer{.latency_s = 1e-3, .bytes_per_s = 20e9, .kv_bytes_per_token = 131072};
  const auto& w = workload();
  int64_t tokens = 0;
  for (auto _ : state) {
    auto r = baton::planner::simulate(d, w, model, transfer);
    if (!r.is_ok()) {
      state.SkipWithError(r.status().to_string().c_str());
      return;
    }
    for (const auto& rec : r->records) tokens += rec.output_tokens;
    benchmark::DoNotOptimize(r->duration_s);
  }
  state.counters["requests"] = static_cast<double>(w.requests.size());
  state.counters["simulated_s"] = w.requests.back().arrival_s;
  state.counters["output_tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

void BM_Agg4(benchmark::State& state) { run(state, deployment(4, 0, 0)); }
void BM_Pd2p2d(benchmark::State& state) { run(state, deployment(0, 2, 2)); }
BENCHMARK(BM_Agg4)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_Pd2p2d)->Unit(benchmark::kSecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();

// CPU forward speed on the default model: prefill tokens/s (one prompt of
// 128 or 512 tokens per step) and decode tokens/s (batch 1 or 8 sequences at
// a context of 256, one token each per step, greedy).
//
// The model: $BATON_MODEL if set, else build/models/default when present,
// else the "default" preset written with random weights to a temp folder.
// $BATON_THREADS sets the backend's thread count (default: all cores).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "backend/cpu/cpu_backend.h"
#include "common/check.h"
#include "model/checkpoint.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"

namespace baton {
namespace {

namespace fs = std::filesystem;
constexpr int kBlockSize = 16;

std::string find_or_make_model() {
  if (const char* env = std::getenv("BATON_MODEL"); env != nullptr && *env != '\0') return env;
  const fs::path built = fs::path(BATON_TEST_DATA) / ".." / ".." / "build" / "models" / "default";
  if (fs::exists(built / "config.json")) return built.string();
  const fs::path tmp = fs::temp_directory_path() / "baton_cpu_bench_default_model";
  if (fs::exists(tmp / "config.json")) return tmp.string();
  Result<ModelPreset> preset = find_model_preset("default");
  BATON_CHECK(preset.is_ok(), "{}", preset.status().to_string());
  RandomCheckpointOptions options;
  options.out_dir = tmp.string();
  options.seed = 0;
  Result<RandomCheckpointStats> st = write_random_checkpoint(preset->config, options);
  BATON_CHECK(st.is_ok(), "{}", st.status().to_string());
  return tmp.string();
}

// One backend for the whole run (loading converts the weights once).
CpuBackend& backend() {
  static std::unique_ptr<CpuBackend> b = [] {
    const std::string dir = find_or_make_model();
    auto ckpt = Checkpoint::open(dir);
    BATON_CHECK(ckpt.is_ok(), "{}", ckpt.status().to_string());
    BackendOptions options;  // $BATON_THREADS: worker threads (default: all cores)
    if (const char* t = std::getenv("BATON_THREADS"); t != nullptr) options.num_threads = std::atoi(t);
    const auto t0 = std::chrono::steady_clock::now();
    auto made = CpuBackend::create(**ckpt, options);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    BATON_CHECK(made.is_ok(), "{}", made.status().to_string());
    BATON_CHECK_OK((*made)->init_kv_cache(8 * (520 / kBlockSize + 1), kBlockSize));
    fmt::print(stderr, "cpu_forward_bench: model {} ({} MB of fp32 weights, loaded in {:.2f} s), {} threads\n", dir,
               (*made)->weight_bytes() >> 20, load_s, (*made)->num_threads());
    return std::move(made).value();
  }();
  return *b;
}

// A step in which each of `num_seqs` sequences adds the tokens at positions
// [start, start + count); sequence s owns blocks [s * blocks_per_seq, ...).
StepInput make_step(int num_seqs, int start, int count, int blocks_per_seq, const SamplingParams& params,
                    std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> tok(0, backend().model_config().vocab_size - 1);
  StepInput in;
  in.max_blocks_per_seq = blocks_per_seq;
  in.query_start.push_back(0);
  for (int s = 0; s < num_seqs; ++s) {
    for (int p = start; p < start + count; ++p) {
      in.token_ids.push_back(tok(rng));
      in.positions.push_back(p);
      in.slot_mapping.push_back(static_cast<int64_t>(s * blocks_per_seq + p / kBlockSize) * kBlockSize +
                                p % kBlockSize);
    }
    in.query_start.push_back(in.num_tokens());
    in.seq_lens.push_back(start + count);
    for (int b = 0; b < blocks_per_seq; ++b) in.block_tables.push_back(s * blocks_per_seq + b);
    SampleRequest r;
    r.seq_index = s;
    r.params = &params;
    in.samples.push_back(r);
  }
  return in;
}

void BM_Prefill(benchmark::State& state) {
  const int prompt = static_cast<int>(state.range(0));
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  std::mt19937 rng(1);
  StepInput in = make_step(1, 0, prompt, prompt / kBlockSize + 1, greedy, rng);
  for (auto _ : state) {
    auto out = backend().execute(in);
    BATON_CHECK(out.is_ok(), "{}", out.status().to_string());
    benchmark::DoNotOptimize(out->samples[0].token_id);
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(prompt),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Prefill)->Arg(128)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Decode(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  constexpr int kContext = 256;
  const int blocks_per_seq = kContext / kBlockSize + 1;
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  std::mt19937 rng(2);
  // Fill each sequence's first 256 positions, then time steps that decode
  // position 256 (rewriting its slot, so the context stays at 257).
  auto prefill = backend().execute(make_step(batch, 0, kContext, blocks_per_seq, greedy, rng));
  BATON_CHECK(prefill.is_ok(), "{}", prefill.status().to_string());
  StepInput in = make_step(batch, kContext, 1, blocks_per_seq, greedy, rng);
  for (auto _ : state) {
    auto out = backend().execute(in);
    BATON_CHECK(out.is_ok(), "{}", out.status().to_string());
    benchmark::DoNotOptimize(out->samples[0].token_id);
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(batch),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Decode)->Arg(1)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace baton

BENCHMARK_MAIN();

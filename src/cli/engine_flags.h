// The engine flags every engine-starting command shares (`baton generate`,
// `baton serve`, ...), and the function that builds the whole engine from
// them: checkpoint -> backend -> tokenizer -> KV cache -> AsyncEngine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "backend/backend.h"
#include "common/status.h"
#include "engine/async_engine.h"
#include "engine/engine_options.h"
#include "model/checkpoint.h"
#include "tokenizer/tokenizer.h"

namespace baton::cli {

struct EngineFlags {
  std::string model;           // empty = the embedded default model
  std::string device = "cpu";  // cpu | cuda
  int num_threads = 0;         // CPU backend threads; 0 = all cores
  int64_t kv_cache_bytes = 0;
  double gpu_memory_utilization = 0.9;  // CUDA: share of device memory to use
  bool batch_invariant = false;         // CUDA: tokens independent of batch shape (slower)
  // Test hook: a JSON file ["output 1", "output 2", ...] that replaces what
  // the model samples (backend/scripted_backend.h). Empty: off.
  std::string scripted_output;
  EngineOptions engine;
};

// Adds --model, --device, --block-size, --num-kv-blocks, --kv-cache-bytes,
// --max-num-batched-tokens, --max-num-seqs, --max-model-len,
// --no-prefix-caching, --seed, --num-threads, --max-waiting-requests,
// --gpu-memory-utilization.
void add_engine_flags(CLI::App& app, EngineFlags& flags);

// Everything an engine needs, owned together (destroyed engine first).
struct LoadedEngine {
  std::string model_dir;
  std::unique_ptr<Checkpoint> checkpoint;
  std::shared_ptr<const Tokenizer> tokenizer;  // null when the model has none
  std::unique_ptr<AsyncEngine> engine;

  ~LoadedEngine();
};

// Called on the core before the engine thread starts (e.g. to set a PD
// KvConnector); an error stops the build.
using CoreConfigurer = std::function<Status(EngineCore& core)>;

// Opens the model (or the default one), makes the backend for --device,
// loads the tokenizer from the model folder when it has one, sizes the KV
// cache, runs `configure` (if any) and starts the engine thread.
Result<std::unique_ptr<LoadedEngine>> build_engine(const EngineFlags& flags,
                                                   const CoreConfigurer& configure = {});

// The same without the engine thread: the synchronous core (tools, tests).
struct LoadedCore {
  std::string model_dir;
  std::unique_ptr<Checkpoint> checkpoint;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::unique_ptr<EngineCore> core;

  ~LoadedCore();
};
Result<std::unique_ptr<LoadedCore>> build_engine_core(const EngineFlags& flags);

}  // namespace baton::cli

// Builds a whole engine from its options: checkpoint -> backend -> tokenizer
// -> KV cache -> EngineCore (and AsyncEngine). The CLI's engine flags
// (cli/engine_flags.h) fill EngineBuildOptions; tests fill it directly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"
#include "engine/async_engine.h"
#include "engine/engine_options.h"
#include "model/checkpoint.h"
#include "tokenizer/tokenizer.h"

namespace baton::instance {

struct EngineBuildOptions {
  std::string model;  // empty = the embedded default model
  // "auto": the model folder's weights; "dummy": random weights from its
  // config alone, or from a preset named by `model` (model/dummy_checkpoint.h).
  std::string load_format = "auto";
  std::string device = "cpu";  // cpu | cuda
  int num_threads = 0;         // CPU backend threads; 0 = all cores
  int64_t kv_cache_bytes = 0;
  double gpu_memory_utilization = 0.9;  // CUDA: share of device memory to use
  bool batch_invariant = false;         // CUDA: tokens independent of batch shape (slower)
  std::string kv_cache_dtype = "auto";  // --kv-cache-dtype: auto | fp8 | fp8_e4m3 (kv/kv_cache_dtype.h)
  int tensor_parallel_size = 1;         // ranks of the instance (cpu threads or GPUs; docs/parallelism.md)
  bool enable_expert_parallel = false;  // MoE experts spread whole over the ranks (docs/parallelism.md)
  std::vector<int> gpus = {};           // CUDA: one device per rank (--gpus); empty: the first visible
  // Test hook: a JSON file ["output 1", "output 2", ...] that replaces what
  // the model samples (backend/scripted_backend.h). Empty: off.
  std::string scripted_output;
  EngineOptions engine;
};

// Everything an engine needs, owned together (destroyed engine first).
struct LoadedEngine {
  std::string model_dir;
  std::unique_ptr<Checkpoint> checkpoint;
  std::shared_ptr<const Tokenizer> tokenizer;  // null when the model has none
  std::unique_ptr<AsyncEngine> engine;

  ~LoadedEngine();
};

// The same without the engine thread: the synchronous core (tools, tests).
struct LoadedCore {
  std::string model_dir;
  std::unique_ptr<Checkpoint> checkpoint;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::unique_ptr<EngineCore> core;

  ~LoadedCore();
};

// Called on the core before the engine thread starts (e.g. to set a PD
// KvConnector); an error stops the build.
using CoreConfigurer = std::function<Status(LoadedCore& core)>;

// Opens the model (or the default one), makes the backend for the device,
// loads the tokenizer from the model folder when it has one, sizes the KV
// cache, runs `configure` (if any) and starts the engine thread.
Result<std::unique_ptr<LoadedEngine>> build_engine(const EngineBuildOptions& options,
                                                   const CoreConfigurer& configure = {});

Result<std::unique_ptr<LoadedCore>> build_engine_core(const EngineBuildOptions& options);

}  // namespace baton::instance

// The engine's view of a model runner: a forward pass over a flattened batch
// with a paged KV cache, and sampling. The CPU backend (cpu/) is the
// reference; the CUDA backend (cuda/) must agree with it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "backend/step.h"
#include "common/status.h"
#include "kv/kv_layout.h"
#include "model/model_config.h"

namespace baton {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const ModelConfig& model_config() const = 0;
  virtual std::string device_name() const = 0;  // "cpu", "NVIDIA H100 80GB HBM3", ...

  // Bytes of one KV block (all layers, K and V) at this block size.
  virtual size_t kv_block_bytes(int block_size) const = 0;
  // Bytes the backend can give the KV cache, given its own sizing rule
  // (CPU: a fixed default; CUDA: --gpu-memory-utilization). 0 = no opinion.
  virtual size_t available_kv_bytes() const { return 0; }
  // Allocates the paged KV cache. Called once before execute().
  virtual Status init_kv_cache(int num_blocks, int block_size) = 0;
  virtual KvMemory kv_memory() = 0;

  // Runs the forward pass of `in`, writes the new tokens' K/V into their
  // slots, and samples for in.samples.
  virtual Result<StepOutput> execute(const StepInput& in) = 0;

  // execute() in two halves, for a caller that does host work while the
  // forward pass runs: submit() starts it (`in` must stay unchanged until
  // wait()), wait() returns what execute() would have. One step in flight at
  // a time. The default runs execute() inside submit(); a device backend
  // overrides both so that submit() returns once the work is queued.
  virtual Status submit(const StepInput& in);
  virtual Result<StepOutput> wait();
  // Whether submit() returns before the step has run (work queued on a
  // device): only then is there host time to overlap with it.
  virtual bool submit_is_async() const { return false; }

  // Ok, or the error that ended this backend for good: every later step
  // would fail with it (a tensor parallel group broken by a failed, stalled
  // or hung rank). Thread-safe: the instance polls it while steps run.
  virtual Status health() const { return Status::ok(); }

 private:
  std::optional<Result<StepOutput>> submitted_;  // the default halves' result
};

}  // namespace baton

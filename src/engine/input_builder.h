// Turns a SchedulerOutput into the backend's flattened StepInput: token ids,
// positions, slot mapping, per-sequence query starts and lengths, padded
// block tables and the sampling rows (TensorRT-LLM's split between capacity
// scheduling and batch building).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/step.h"
#include "engine/scheduler.h"
#include "kv/kv_cache_manager.h"

namespace baton {

class InputBuilder {
 public:
  explicit InputBuilder(const KvCacheManager* kv) : kv_(kv) {}

  // Fills `in` (its buffers are reused across steps).
  void build(const SchedulerOutput& out, StepInput& in) const;

 private:
  const KvCacheManager* kv_;
};

}  // namespace baton

// Where a step's wall time goes (issue 18 item 5: decode's fixed costs). The
// GPU's part is timed alone: the backend's stream is held by a spinning
// kernel until the whole step (input upload, kernels or graph, output
// readback) is queued, so the events around it see no host gap. The host's
// submit (validation, packing, the launch calls) is timed on the host. The
// rest of the wall time is the host around the GPU: packing before the first
// copy can start, the wake-up from the sync, reading the outputs.
#pragma once

#include <functional>

#include "backend/cuda/cuda_backend.h"
#include "backend/step.h"
#include "common/status.h"

namespace baton::cuda {

struct StepAnatomy {
  double gpu_ms = 0;     // upload, kernels, readback, back to back
  double submit_ms = 0;  // the host's submit() call
  double wall_ms = 0;    // submit() + wait(), the stream not held
};

// Medians over `iters` steps (make_input(i) for step i) after one warm-up.
Result<StepAnatomy> time_step_anatomy(CudaBackend& b, const std::function<StepInput(int)>& make_input, int iters);

}  // namespace baton::cuda

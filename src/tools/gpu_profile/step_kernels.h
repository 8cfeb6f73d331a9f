// What each kernel of a decode step costs inside the step (issue 18 item 5:
// decode's fixed costs). The step's captured CUDA graph
// (CudaBackend::decode_graph) is replayed as it is and, for each kernel the
// step launches (grouped by name), replayed with that kernel's launches
// replaced by an empty kernel that only waits for the one before it
// (wait_only_kernel_symbol, so the graph's dependencies and programmatic
// launches hold). A kernel's in-step cost is the difference of the two
// replay times, measured in the same rounds, alternating. Kernels timed one
// at a time (ncu) each carry their own launch and ramp, which a graph of
// programmatic launches overlaps; this measures what leaving one out saves.
// A replay without a kernel computes wrong values (its readers read what the
// last full replay left): only its time means anything.
#pragma once

#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/step.h"
#include "common/status.h"

namespace baton::cuda {

struct KernelCost {
  std::string name;       // demangled, without namespaces and parameters
  int launches = 0;       // in one step
  double without_ms = 0;  // the graph's replay with those launches left out
  double cost_us = 0;     // (graph_ms - without_ms) in microseconds
};

struct StepKernels {
  double graph_ms = 0;              // the whole graph's replay (the GPU only), median
  int kernel_nodes = 0;             // kernel launches in the graph
  std::vector<KernelCost> kernels;  // costliest first
};

// Runs `step` (a decode step the backend replays as a graph) twice, then
// times its graph and one copy per kernel name over `rounds` rounds.
Result<StepKernels> time_step_kernels(CudaBackend& b, const StepInput& step, int rounds);

}  // namespace baton::cuda

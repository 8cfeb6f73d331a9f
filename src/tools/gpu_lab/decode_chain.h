// The decode-chain lab: whether one persistent kernel per decode step would
// stream a model's weights faster at batch 1 than a CUDA graph of one kernel
// per linear. It runs a model's chain of linears at one token (each reading
// the one before's output) in several forms, all over the tree's skinny-GEMV
// inner loop (backend/cuda/gemv.cuh, warp_outputs), and times each against a
// device copy measured in the same run. A lab, not a backend path: nothing of
// the engine calls it.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace baton::cuda {

struct ChainOptions {
  std::vector<std::string> models = {"llama", "qwen3moe"};  // the chains (decode_chain.cu, chain_shapes)
  std::vector<std::string> dtypes = {"bf16", "e4m3"};
  std::vector<int> prefetch_bytes = {1024, 4096};  // the persistent forms' L2 prefetch a row (0: none)
  std::vector<int> blocks_per_sm = {0, 2};         // the persistent grid (0: as many as fit)
  int reps = 20;
};

// One form of one chain, timed.
struct ChainRow {
  std::string model, dtype, form;
  int stages = 0;           // linears and combines a step
  int grid = 0;             // blocks (the persistent forms: the whole grid)
  int registers = 0;        // a thread, of the form's kernel (the graph forms: the larger linear kernel's)
  double weight_bytes = 0;  // read a step
  double step_us = 0;       // median over the reps
  double gbps = 0, of_copy = 0;
  std::string check;  // "bit-equal", "DIFFERS", or "not checked" (the barrier-free ceiling)
};

struct ChainReport {
  std::string device;
  double copy_gbps = 0;  // a 2 GiB device copy, read + write
  std::vector<ChainRow> rows;
};

Result<ChainReport> run_decode_chain(const ChainOptions& options);

}  // namespace baton::cuda

// What a serving process pays the first time it meets a step's shape: costs
// the step-time model does not see, because a profile times its steps after
// warm-up. They are the CUDA backend's (src/backend/cuda):
//   - gemm.cpp: the first GEMM of a bucket of m (m exact up to 64, then 8
//     buckets per power of two) times the cuBLASLt candidates (8, one warm-up
//     and 5 timed launches each, and the skinny GEMV kernel where m <= 8,
//     each timed launch after its 64 MiB workspace is overwritten to take the
//     weights out of L2) before it runs; every later m of the bucket reuses the choice. m is the
//     step's token count for the layers' four linears and its number of
//     sampled rows for the LM head;
//   - cuda_backend.cpp: the first decode-only step of a (batch bucket,
//     block-table bucket) runs once eagerly (its GEMM plans tuned outside the
//     capture), then is captured as a CUDA graph.
// A process starts cold: in a sweep, its first trials meet most shapes. The
// time a candidate takes is the profile's measured GEMM time at that m (its
// linears timed alone), so the cost is a lower bound (slower candidates take
// longer); the graph's capture and instantiation are not measured and not
// counted.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton::planner {

// The backend's buckets, as src/backend/cuda names them.
int gemm_m_bucket(int m);          // gemm.cpp
int graph_batch_bucket(int seqs);  // cuda_backend.cpp batch_bucket: -1 above 256 (no graph)
int graph_blocks_bucket(int max_blocks_per_seq);

// One step as the backend sees it.
struct StepDims {
  int num_tokens = 0;  // computed this step (the layers' m)
  int num_seqs = 0;
  int num_samples = 0;  // rows the LM head computes (eager path)
  int max_blocks_per_seq = 0;
};

// The shapes a process has met so far (one per instance, kept across the
// trials that process served).
struct EngineWarmth {
  std::set<int> layer_buckets;           // of the four linears' m
  std::set<int> head_buckets;            // of the LM head's m
  std::set<std::pair<int, int>> graphs;  // (batch bucket, block-table bucket)
  int64_t num_tunings = 0;               // buckets timed (layers and head)
  int64_t num_graphs = 0;                // graphs captured
  double seconds = 0;                    // what first uses cost, in all
};

class FirstUseModel {
 public:
  static constexpr int kCandidates = 8;            // gemm.cpp: cuBLASLt heuristics asked for
  static constexpr int kLaunchesPerCandidate = 6;  // one warm-up, 5 timed
  static constexpr int kTimedLaunchesPerCandidate = 5;
  static constexpr int kLinearsPerLayer = 4;               // qkv, o, gate/up, down: each shape tuned
  static constexpr double kFlushBytes = 64.0 * (1 << 20);  // gemm.cpp's workspace, overwritten per timed launch

  FirstUseModel() = default;
  // layer_ms: (m, ms of one layer's four linears at m), measured; head_ms_m1:
  // the LM head at m = 1; copy_gbps: the card's copy bandwidth (the flush
  // before each timed launch writes kFlushBytes at it; 0: not counted).
  FirstUseModel(std::vector<std::pair<double, double>> layer_ms, double head_ms_m1, double copy_gbps = 0);

  bool empty() const { return layer_ms_.empty(); }
  // One layer's linears at m (interpolated between measured m, linear past the last).
  double layer_s(int m) const;
  double head_s(int m) const;
  // Tuning a new bucket: every candidate (and GEMV where m <= 8) launched 6
  // times, 5 of them after a flush.
  double tune_layers_s(int m) const;
  double tune_head_s(int m) const;
  // What `step` costs besides its steady-state time (`step_s`), given what
  // `warmth` has met; records the step's shapes in `warmth`.
  double first_use_s(const StepDims& step, double step_s, EngineWarmth& warmth) const;
  Json to_json() const;

 private:
  std::vector<std::pair<double, double>> layer_ms_;  // sorted by m
  double head_ms_m1_ = 0;
  double flush_s_ = 0;  // one overwrite of the workspace
};

// From a `baton profile` document: models[].prefill[].linear_gemms.per_gemm
// (the four linears timed alone at the prompt's m) and models[].decode[]
// .linears_alone.per_linear (at m = 1, with the LM head), and ceilings
// .copy_gbps for the flushes where the profile has it. An empty model
// (no cost) when the profile timed no linears.
Result<FirstUseModel> first_use_from_profile(const Json& profile, const std::string& model);

}  // namespace baton::planner

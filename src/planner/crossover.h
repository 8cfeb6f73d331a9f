// Crossover maps: where PD beats aggregated serving, and by how much, over a
// grid of two workload or SLO parameters (input x output length, prefix-hit
// rate x TPOT limit). Each cell is a whole plan (planner.h) at that point:
// agg's predicted rate against the best PD split's.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "planner/planner.h"

namespace baton::planner {

struct CrossoverAxis {
  std::string name;  // "input tokens", "TPOT p90 limit (ms)", ...
  std::vector<double> values;
  std::function<Status(PlanInputs&, double)> apply;  // sets one point of the axis
};

// The standard axes. Lengths set both ends of the workload's range.
CrossoverAxis input_len_axis(std::vector<double> tokens);
CrossoverAxis output_len_axis(std::vector<double> tokens);
// The prefix workload's share of each prompt that is a shared prefix.
CrossoverAxis prefix_hit_axis(std::vector<double> rates);
// The limit of the SLO's tpot target (one must exist), in milliseconds.
CrossoverAxis tpot_limit_axis(std::vector<double> limits_ms);

struct CrossoverCell {
  double x = 0, y = 0;
  double agg_rate = 0;
  double best_pd_rate = 0;
  std::string best_pd;  // the split, e.g. "pd-1p3d"
  // best_pd_rate / agg_rate (inf when only PD meets the SLO; 0 when neither).
  double ratio = 0;
};

struct CrossoverMap {
  std::string x_name, y_name;
  std::vector<double> xs, ys;
  std::vector<CrossoverCell> cells;  // row-major: y outer, x inner
  Json to_json() const;
};

Result<CrossoverMap> crossover_map(const PlanInputs& base, const CrossoverAxis& x, const CrossoverAxis& y);

}  // namespace baton::planner

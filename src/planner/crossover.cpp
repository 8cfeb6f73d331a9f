#include "planner/crossover.h"

#include <cmath>
#include <limits>

namespace baton::planner {

namespace {

CrossoverAxis length_axis(std::string name, std::vector<double> tokens, bool input) {
  return CrossoverAxis{std::move(name), std::move(tokens), [input](PlanInputs& in, double v) -> Status {
                         if (!(v >= 1)) return invalid_argument("a length axis needs values >= 1, got {}", v);
                         const auto n = static_cast<int64_t>(v);
                         (input ? in.workload.input_len : in.workload.output_len) = {n, n};
                         return Status::ok();
                       }};
}

}  // namespace

CrossoverAxis input_len_axis(std::vector<double> tokens) {
  return length_axis("input tokens", std::move(tokens), true);
}

CrossoverAxis output_len_axis(std::vector<double> tokens) {
  return length_axis("output tokens", std::move(tokens), false);
}

CrossoverAxis prefix_hit_axis(std::vector<double> rates) {
  return CrossoverAxis{"prefix-hit rate", std::move(rates), [](PlanInputs& in, double v) -> Status {
                         if (!(v >= 0 && v <= 1)) return invalid_argument("a prefix-hit rate is in [0, 1], got {}", v);
                         in.workload.kind = "prefix";
                         in.workload.prefix_hit_rate = v;
                         return Status::ok();
                       }};
}

CrossoverAxis tpot_limit_axis(std::vector<double> limits_ms) {
  return CrossoverAxis{"TPOT limit (ms)", std::move(limits_ms), [](PlanInputs& in, double v) -> Status {
                         if (!(v > 0)) return invalid_argument("a TPOT limit must be positive, got {} ms", v);
                         for (bench::SloTarget& t : in.slo.targets) {
                           if (t.metric != "tpot") continue;
                           t.limit_s = v / 1000.0;
                           return Status::ok();
                         }
                         return invalid_argument("a TPOT-limit axis needs a tpot target in the SLO");
                       }};
}

Json CrossoverMap::to_json() const {
  Json cs = Json::array();
  for (const CrossoverCell& c : cells) {
    cs.push_back({{"x", c.x},
                  {"y", c.y},
                  {"agg_rate", c.agg_rate},
                  {"best_pd_rate", c.best_pd_rate},
                  {"best_pd", c.best_pd},
                  {"ratio", std::isfinite(c.ratio) ? Json(c.ratio) : Json("inf")}});
  }
  return Json{{"x", x_name}, {"y", y_name}, {"xs", xs}, {"ys", ys}, {"cells", cs}};
}

Result<CrossoverMap> crossover_map(const PlanInputs& base, const CrossoverAxis& x, const CrossoverAxis& y) {
  if (base.num_gpus < 2) return invalid_argument("a crossover map compares agg with PD: it needs at least 2 GPUs");
  if (x.values.empty() || y.values.empty()) return invalid_argument("a crossover map needs values on both axes");
  CrossoverMap map{x.name, y.name, x.values, y.values, {}};
  for (double yv : y.values) {
    for (double xv : x.values) {
      PlanInputs in = base;
      in.model_rel_error = 0;  // the map compares central predictions
      BATON_RETURN_IF_ERROR(x.apply(in, xv));
      BATON_RETURN_IF_ERROR(y.apply(in, yv));
      BATON_ASSIGN_OR_RETURN(Plan plan, make_plan(in));
      CrossoverCell cell{.x = xv, .y = yv};
      for (const DeploymentPlan& d : plan.deployments) {
        if (d.num_agg > 0) {
          cell.agg_rate = d.max_rate;
        } else if (d.max_rate > cell.best_pd_rate) {
          cell.best_pd_rate = d.max_rate;
          cell.best_pd = d.name;
        }
      }
      cell.ratio = cell.agg_rate > 0 ? cell.best_pd_rate / cell.agg_rate
                                     : (cell.best_pd_rate > 0 ? std::numeric_limits<double>::infinity() : 0.0);
      map.cells.push_back(cell);
    }
  }
  return map;
}

}  // namespace baton::planner

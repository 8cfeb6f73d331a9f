// The plan as a self-contained HTML page (no scripts, no network): the
// inputs, the step-time fit and its residuals, every deployment's predicted
// rate with its band and token budgets, the recommendation, and crossover
// maps coloured by how much PD wins or loses against agg.
#pragma once

#include <string>
#include <vector>

#include "common/json.h"
#include "planner/crossover.h"
#include "planner/planner.h"
#include "planner/step_time_model.h"

namespace baton::planner {

struct PlanReportInputs {
  std::string title;
  Json inputs;  // what was planned for (model, GPUs, workload, SLO), shown as given
  Json model;   // StepTimeModel::to_json()
  FitReport fit;
  std::vector<std::string> fit_labels;  // one per fit residual
  Plan plan;
  std::vector<CrossoverMap> maps;
};

std::string render_plan_html(const PlanReportInputs& r);

}  // namespace baton::planner

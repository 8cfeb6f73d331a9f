// A `baton profile` JSON document as `baton plan` reads it (src/planner:
// samples_from_profile, then the step-time fit): every row kind, hostile
// numbers included. A refusal must name its problem.
// fuzz-link: baton_planner
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/json.h"
#include "fuzz_util.h"
#include "planner/step_time_model.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  baton::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto doc = baton::parse_json(baton::fuzz::as_text(data, size), "profile");
  if (!doc.is_ok()) return 0;
  auto samples = baton::planner::samples_from_profile(*doc, "");
  if (!samples.is_ok()) {
    if (samples.status().message().empty()) std::abort();
    return 0;
  }
  baton::planner::FitReport report;
  auto model = baton::planner::StepTimeModel::fit(*samples, &report);
  if (!model.is_ok() && model.status().message().empty()) std::abort();
  return 0;
}

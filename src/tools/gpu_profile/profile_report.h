// The report of `baton profile`: the issues' targets (met or not, and what
// limits a miss) and the Markdown form of the JSON report.
#pragma once

#include <string>

#include "common/json.h"

namespace baton::cuda {

Json targets(const Json& report);
std::string markdown(const Json& report);

}  // namespace baton::cuda

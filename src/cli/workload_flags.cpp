#include "cli/workload_flags.h"

#include <cmath>

namespace baton::cli {

void add_workload_flags(CLI::App& app, bench::WorkloadSettings& settings) {
  for (const auto& o : bench::workload_options()) {
    CLI::Option* flag = std::visit(
        [&](auto field) { return app.add_option(o.flag, settings.*field, o.help)->capture_default_str(); }, o.field);
    // The range is checked at parse time too, so that a bad value is refused before anything runs.
    if (std::isfinite(o.min) || std::isfinite(o.max)) flag->check(CLI::Range(o.min, o.max));
  }
}

void note_given_workload_flags(const CLI::App& app, bench::WorkloadSettings& settings) {
  for (const auto& o : bench::workload_options()) {
    if (app.get_option(o.flag)->count() > 0) settings.given.insert(o.key);
  }
}

}  // namespace baton::cli

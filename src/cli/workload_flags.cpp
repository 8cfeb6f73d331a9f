#include "cli/workload_flags.h"

namespace baton::cli {

void add_workload_flags(CLI::App& app, bench::WorkloadSettings& settings) {
  for (const auto& o : bench::workload_options()) {
    std::visit([&](auto field) { app.add_option(o.flag, settings.*field, o.help)->capture_default_str(); }, o.field);
  }
}

void note_given_workload_flags(const CLI::App& app, bench::WorkloadSettings& settings) {
  for (const auto& o : bench::workload_options()) {
    if (app.get_option(o.flag)->count() > 0) settings.given.insert(o.key);
  }
}

}  // namespace baton::cli

// The CLI binding of the workload schema (bench/workload_schema.h): one flag
// per option, with its help, its default shown, bound to a WorkloadSettings.
#pragma once

#include <CLI/CLI.hpp>

#include "bench/workload_schema.h"

namespace baton::cli {

// Adds every workload option's flag to `app`, bound to `settings` (which must outlive the parse).
void add_workload_flags(CLI::App& app, bench::WorkloadSettings& settings);

// After the parse: records in settings.given the options whose flag was on the command line.
void note_given_workload_flags(const CLI::App& app, bench::WorkloadSettings& settings);

}  // namespace baton::cli

// `baton version`: the build's version and whether CUDA was compiled in.
#include <iostream>

#include "cli/command.h"

namespace {

baton::cli::RunFn setup(CLI::App& sub) {
  return [] {
#ifdef BATON_HAVE_CUDA
    std::cout << "baton 0.1.0 (cuda)\n";
#else
    std::cout << "baton 0.1.0 (cpu only)\n";
#endif
    return 0;
  };
}

}  // namespace

baton::cli::CommandSpec baton::cli::version_command() { return {"version", "Print the version", &setup}; }

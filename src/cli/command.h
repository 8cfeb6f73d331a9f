// The subcommands of `baton`. Each command lives in its own
// src/cli/cmd_NAME.cpp and exports one function that describes it:
//
//   CommandSpec generate_command() { return {"generate", "Generate tokens", &setup}; }
//
// setup(app) adds options to the subcommand and returns the function that runs
// it (returning the process exit code). all_commands() (cli/main.cpp) lists
// them: a new command adds its function there.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace baton::cli {

using RunFn = std::function<int()>;
using SetupFn = std::function<RunFn(CLI::App& sub)>;

struct CommandSpec {
  std::string name;
  std::string description;
  SetupFn setup;
};

// One function a command, defined in its cmd_NAME.cpp.
CommandSpec bench_command();
CommandSpec bench_transfer_command();
CommandSpec generate_command();
CommandSpec init_model_command();
CommandSpec plan_command();
CommandSpec profile_command();
CommandSpec proxy_command();
CommandSpec serve_command();
CommandSpec sweep_command();
CommandSpec tokenize_command();
CommandSpec up_command();
CommandSpec version_command();

// Every command of the binary, sorted by name.
std::vector<CommandSpec> all_commands();

}  // namespace baton::cli

// Self-registering subcommands of `baton`. Each command lives in its own
// src/cli/cmd_NAME.cpp and registers itself with a static Command object:
//
//   static baton::cli::Command kCmd("generate", "Generate tokens", &setup);
//
// setup(app) adds options to the subcommand and returns the function that runs
// it (returning the process exit code).
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

class Command {
 public:
  Command(std::string name, std::string description, SetupFn setup);
};

// All registered commands, in registration order.
std::vector<CommandSpec>& registered_commands();

}  // namespace baton::cli

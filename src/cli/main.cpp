// `baton <command>`: the commands register themselves (command.h).
#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "common/log.h"

namespace baton::cli {

std::vector<CommandSpec>& registered_commands() {
  static std::vector<CommandSpec> commands;
  return commands;
}

Command::Command(std::string name, std::string description, SetupFn setup) {
  registered_commands().push_back({std::move(name), std::move(description), std::move(setup)});
}

}  // namespace baton::cli

int main(int argc, char** argv) {
  baton::init_logging();
  CLI::App app{"baton: LLM serving with prefill/decode disaggregation"};
  app.require_subcommand(1);
  auto& commands = baton::cli::registered_commands();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, baton::cli::RunFn>> runs;
  for (auto& cmd : commands) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.description);
    runs.emplace_back(sub, cmd.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, run] : runs) {
    if (sub->parsed()) return run();
  }
  return 2;
}

// `baton <command>`: every command (command.h), and the device libraries of
// this build registered before any runs.
#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "common/log.h"
#if BATON_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif
#if BATON_HAVE_KV_CUDA
#include "kv_transfer/cuda/cuda_ipc_transport.h"
#endif

namespace baton::cli {

std::vector<CommandSpec> all_commands() {
  std::vector<CommandSpec> commands = {
      bench_command(), bench_transfer_command(), generate_command(), init_model_command(),
      plan_command(),  profile_command(),        proxy_command(),    serve_command(),
      sweep_command(), tokenize_command(),       up_command(),       version_command(),
  };
  std::sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return commands;
}

// The optional device libraries of this build, registered with the backend
// factory and kv_transfer's registry before any command runs. The one place
// they are registered: no static initialisers, no whole-archive linking.
void register_device_libraries() {
#if BATON_HAVE_CUDA
  cuda::register_cuda_backend();
#endif
#if BATON_HAVE_KV_CUDA
  register_cuda_kv_transfer();
#endif
}

}  // namespace baton::cli

int main(int argc, char** argv) {
  baton::init_logging();
  baton::cli::register_device_libraries();
  CLI::App app{"baton: LLM serving with prefill/decode disaggregation"};
  app.require_subcommand(1);
  std::vector<baton::cli::CommandSpec> commands = baton::cli::all_commands();
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

// `baton up SPEC.yaml`: start a deployment (instances + router) from one
// spec, print its endpoint, watch it, stop everything on Ctrl-C or SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <ctime>
#include <iostream>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "cli/k8s_emit.h"
#include "cli/slurm_launch.h"
#include "deploy/supervisor.h"

namespace {

using baton::cli::self_binary;

baton::cli::RunFn setup(CLI::App& sub) {
  struct Opts {
    std::string spec_path;
    std::string run_dir;
    bool dry_run = false;
    int max_restarts = 5;
    baton::cli::K8sEmitFlags k8s;
    std::string launcher = "local";
    std::vector<std::string> srun_args;
  };
  auto opts = std::make_shared<Opts>();
  sub.add_option("spec", opts->spec_path, "Deployment spec (YAML)")->required();
  sub.add_option("--run-dir", opts->run_dir, "Folder for the processes' logs (default runs/NAME-TIME)");
  sub.add_option("--max-restarts", opts->max_restarts, "Restarts allowed per instance");
  sub.add_flag("--dry-run", opts->dry_run, "Print the command lines and exit");
  baton::cli::add_k8s_emit_flags(sub, opts->k8s);
  sub.add_option("--launcher", opts->launcher,
                 "local (processes on this host) or slurm (job steps of the Slurm allocation it runs in)")
      ->check(CLI::IsMember({"local", "slurm"}))
      ->capture_default_str();
  sub.add_option("--srun-arg", opts->srun_args,
                 "--launcher slurm: an argument for every step's srun (repeatable; "
                 "write it as --srun-arg=--cpus-per-task=8)");
  return [opts] {
    if (!opts->k8s.emit.empty()) return baton::cli::emit_k8s(opts->spec_path, opts->k8s);
    auto spec = baton::deploy::DeploySpec::load(opts->spec_path);
    if (!spec.is_ok()) {
      std::cerr << "baton up: " << spec.status().message() << "\n";
      return 2;
    }
    if (opts->dry_run) {
      auto instances = baton::deploy::plan_instances(*spec);
      if (!instances.is_ok()) {
        std::cerr << "baton up: " << instances.status().message() << "\n";
        return 2;
      }
      for (const auto& inst : *instances) {
        std::cout << inst.name << ":"
                  << (inst.gpus.empty() ? "" : " CUDA_VISIBLE_DEVICES=" + inst.cuda_visible_devices()) << " baton";
        for (const auto& a : inst.args) std::cout << " " << a;
        std::cout << "\n";
      }
      std::cout << "router: baton";
      for (const auto& a : baton::deploy::router_args(*spec, *instances)) std::cout << " " << a;
      std::cout << "\n";
      return 0;
    }
    std::string run_dir = opts->run_dir;
    if (run_dir.empty()) {
      char stamp[32];
      std::time_t t = std::time(nullptr);
      std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", std::localtime(&t));
      run_dir = "runs/" + spec->name + "-" + stamp;
    }
    const std::atomic<bool>& stop_requested = baton::cli::install_stop_flag();
    baton::deploy::SupervisorOptions sopts;
    sopts.baton_binary = self_binary();
    sopts.run_dir = run_dir;
    sopts.max_restarts = opts->max_restarts;
    sopts.on_event = [](const std::string& m) { std::cerr << "baton up: " << m << std::endl; };
    if (opts->launcher == "slurm") {
      std::string summary;
      baton::Status placed = baton::cli::use_slurm_launcher(*spec, opts->srun_args, &sopts, &summary);
      if (!placed.is_ok()) {
        std::cerr << "baton up: " << placed.message() << "\n";
        return 2;
      }
      std::cerr << "baton up: " << summary << std::endl;
    }
    baton::deploy::Supervisor supervisor(*spec, sopts);
    baton::Status st = supervisor.start();
    if (!st.is_ok()) {
      std::cerr << "baton up: " << st.message() << "\n";
      supervisor.stop();
      return 1;
    }
    std::cout << "endpoint: " << supervisor.endpoint() << "\nlogs: " << run_dir << std::endl;
    st = supervisor.run_until(stop_requested);
    std::cerr << "baton up: stopping" << std::endl;
    supervisor.stop();
    if (!st.is_ok()) {
      std::cerr << "baton up: " << st.message() << "\n";
      return 1;
    }
    return 0;
  };
}

}  // namespace

baton::cli::CommandSpec baton::cli::up_command() {
  return {"up", "Start a deployment (instances and router) from a YAML spec", &setup};
}

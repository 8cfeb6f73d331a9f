// `baton sweep EXPERIMENT.yaml [--out DIR] [--resume]`: bring up each
// deployment of an experiment in turn, search each workload's max sustainable
// rate under its SLO, tear the deployment down, and write the comparison
// (table.md, table.json, report.html). See deploy/experiment.h for the file.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "common/files.h"
#include "common/log.h"
#include "deploy/experiment.h"
#include "deploy/sweep.h"
#include "deploy/sweep_report.h"

namespace {

using baton::cli::self_binary;
using baton::cli::split_commas;

baton::cli::RunFn setup(CLI::App& sub) {
  struct Opts {
    std::string experiment_path;
    std::string out;
    bool resume = false;
    bool report_only = false;
    bool plan = false;
    double time_budget_s = 0;
    std::string deployments, workloads;
  };
  auto opts = std::make_shared<Opts>();
  sub.add_option("experiment", opts->experiment_path, "Experiment (YAML): deployments, workloads, SLOs, search")
      ->required();
  sub.add_option("--out", opts->out, "Output folder (default results/EXPERIMENT_NAME)");
  sub.add_flag("--resume", opts->resume, "Keep the results already in --out and run only the missing ones");
  sub.add_flag("--report-only", opts->report_only, "Run nothing: rebuild table and report from the results on disk");
  sub.add_option("--time-budget-s", opts->time_budget_s,
                 "Start no trial after this many seconds; finished trials are kept and --resume goes on");
  sub.add_flag("--plan", opts->plan, "Run nothing: list every deployment x workload and whether it is on disk");
  sub.add_option("--deployments", opts->deployments, "Run only these deployments (comma-separated names)");
  sub.add_option("--workloads", opts->workloads, "Run only these workloads (comma-separated names)");
  return [opts] {
    auto experiment = baton::deploy::Experiment::load(opts->experiment_path);
    if (!experiment.is_ok()) {
      std::cerr << "baton sweep: " << experiment.status().message() << "\n";
      return 2;
    }
    const std::string out = opts->out.empty() ? "results/" + experiment->name : opts->out;
    auto say = [](const std::string& m) { std::cout << m << std::endl; };
    if (opts->plan) {
      for (const auto& d : experiment->deployments) {
        std::cout << d.name << " (" << d.source << ", " << d.spec.mode << ", "
                  << (d.spec.mode == "agg" ? std::to_string(d.spec.agg.replicas) + " replicas"
                                           : fmt::format("{}P{}D over {}", d.spec.prefill.replicas,
                                                         d.spec.decode.replicas, d.spec.kv_transport))
                  << "):\n";
        for (const auto& w : experiment->workloads) {
          if (!experiment->runs(d, w)) continue;
          bool done = baton::deploy::result_on_disk(out, d.name, w.name);
          bool partial = baton::path_exists(baton::deploy::partial_path(out, d.name, w.name));
          auto search = baton::deploy::effective_search(w, d.name);
          if (!search.is_ok()) {
            std::cerr << "baton sweep: workload " << w.name << ": " << search.status().message() << "\n";
            return 2;
          }
          const std::string per_trial = w.options.num_requests > 0
                                            ? fmt::format("{} requests/trial", w.options.num_requests)
                                            : fmt::format("{:g} s of arrivals/trial", w.options.duration_s);
          std::cout << fmt::format("  {:<24} {:<8} slo {}; {}, start {} {}, {} trials at most\n", w.name,
                                   done ? "on disk" : (partial ? "part" : "to run"), w.slo_text, per_trial,
                                   fmt::format("{:.3g}", search->start_rate), baton::bench::rate_unit(w.options.kind),
                                   search->max_trials);
        }
      }
      return 0;
    }
    bool failed = false;
    if (!opts->report_only) {
      const std::atomic<bool>& stop_requested = baton::cli::install_stop_flag();
      baton::deploy::SweepOptions so;
      so.out_dir = out;
      so.resume = opts->resume;
      so.baton_binary = self_binary();
      so.only_deployments = split_commas(opts->deployments);
      so.only_workloads = split_commas(opts->workloads);
      so.stop_requested = &stop_requested;
      so.time_budget_s = opts->time_budget_s;
      so.log = say;
      auto summary = baton::deploy::run_sweep(*experiment, so);
      if (!summary.is_ok()) {
        std::cerr << "baton sweep: " << summary.status().message() << "\n";
        return 2;
      }
      say(fmt::format("sweep: {} result(s) run now, {} already on disk, {} failed{}", summary->num_run,
                      summary->num_skipped, summary->failures.size(),
                      summary->interrupted ? " (stopped early: rerun with --resume to continue)" : ""));
      for (const auto& f : summary->failures) std::cerr << "baton sweep: FAILED " << f << "\n";
      failed = !summary->failures.empty() || summary->interrupted;
    }
    auto table = baton::deploy::write_sweep_report(*experiment, out);
    if (!table.is_ok()) {
      std::cerr << "baton sweep: " << table.status().message() << "\n";
      return 1;
    }
    std::cout << "\n" << table->to_markdown() << "\nwrote " << out << "/{table.md,table.json,report.html}" << std::endl;
    return failed ? 1 : 0;
  };
}

}  // namespace

baton::cli::CommandSpec baton::cli::sweep_command() {
  return {"sweep",
          "Run an experiment: each deployment up in turn, max sustainable QPS per workload "
          "under its SLO, one comparison report",
          &setup};
}

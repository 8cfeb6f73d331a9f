// `baton plan`: the predicted max sustainable rate of agg and of every xPyD
// split of --gpus GPUs for a workload and an SLO, with the token budget per
// role, from a `baton profile` of the model on the card (planner/planner.h,
// docs/planner.md). Nothing runs on a GPU.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench/workload_schema.h"
#include "cli/command.h"
#include "cli/workload_flags.h"
#include "common/json.h"
#include "model/presets.h"
#include "planner/crossover.h"
#include "planner/plan_report.h"
#include "planner/plan_validation.h"
#include "planner/planner.h"

namespace {

using namespace baton;
using namespace baton::planner;

struct PlanArgs {
  std::string profile_path;
  std::string model;  // the profile's model entry, and the preset whose KV size it has
  int gpus = 0;
  bench::WorkloadSettings w;
  std::vector<int> token_budgets = {1024, 2048, 4096, 8192};
  int max_num_seqs = 256;
  int block_size = 16;
  int kv_blocks = 0;
  double gpu_memory_gib = 0;
  double gpu_memory_utilization = 0.9;
  double transfer_gbps = 50;
  double transfer_latency_ms = 1;
  double router_hop_ms = 0.5;
  std::string policy = "round_robin";
  double max_rate = 1000;
  bool maps = false;
  std::string json_path, html_path;
  std::string validate_dir, profiles_dir;  // --validate: predicted against a recorded sweep
  bool compare_trials = false;             // --validate: each measured trial replayed in the simulator
  std::string sim_records_dir;             // --validate: where the replayed trials' requests go
  std::string transfer_results;            // --validate: a bench-transfer JSON the KV pulls are fitted from
  bool steady_state = false;               // --validate: the planner's warm search, not the sweep's own run again
  bool json_given = false;                 // --json without a file: print JSON (--validate)
};

struct Prepared {
  PlanInputs inputs;
  FitReport fit;
  std::vector<std::string> fit_labels;
  Json described;
};

Result<Prepared> prepare(const PlanArgs& a) {
  Prepared p;
  PlanInputs& in = p.inputs;
  BATON_ASSIGN_OR_RETURN(Json profile, read_json_file(a.profile_path));
  BATON_ASSIGN_OR_RETURN(std::vector<StepSample> samples, samples_from_profile(profile, a.model));
  BATON_ASSIGN_OR_RETURN(in.model, StepTimeModel::fit(samples, &p.fit));
  for (const StepSample& s : samples) p.fit_labels.push_back(s.label);
  in.model_rel_error = p.fit.rms_rel_error;
  std::string model = a.model;
  if (model.empty()) model = profile["models"][0].value("model", "");
  BATON_ASSIGN_OR_RETURN(ModelPreset preset, find_model_preset(model));
  in.transfer = TransferModel{.latency_s = a.transfer_latency_ms / 1000.0,
                              .bytes_per_s = a.transfer_gbps * 1e9,
                              .kv_bytes_per_token = kv_bytes_per_token(preset.config)};
  in.num_kv_blocks = a.kv_blocks;
  if (in.num_kv_blocks == 0) {
    if (a.gpu_memory_gib <= 0) {
      return invalid_argument(
          "give the KV capacity of an instance: --kv-blocks, or --gpu-memory-gib (the card's "
          "memory, with --gpu-memory-utilization)");
    }
    double weights = 0;
    for (const Json& m : profile["models"]) {
      if (m.value("model", "") == model) weights = m.value("weight_bytes", 0.0);
    }
    const double free = a.gpu_memory_gib * (1 << 30) * a.gpu_memory_utilization - weights;
    in.num_kv_blocks = static_cast<int>(free / static_cast<double>(in.transfer.kv_bytes_per_token * a.block_size));
    if (in.num_kv_blocks < 1) return invalid_argument("the model's weights leave no memory for KV on that card");
  }
  BATON_ASSIGN_OR_RETURN(in.workload, bench::to_workload_options(a.w, bench::OptionNames::kFlag));
  if (in.workload.vocab_size <= 0) in.workload.vocab_size = preset.config.vocab_size;
  BATON_ASSIGN_OR_RETURN(in.slo, bench::settings_slo(a.w, bench::OptionNames::kFlag));
  BATON_ASSIGN_OR_RETURN(in.policy, parse_sim_policy(a.policy));
  in.num_warmup = a.w.warmup;
  in.warmup_s = a.w.warmup_s;
  in.num_gpus = a.gpus;
  in.block_size = a.block_size;
  in.max_num_seqs = a.max_num_seqs;
  in.token_budgets = a.token_budgets;
  in.router_hop_s = a.router_hop_ms / 1000.0;
  in.max_rate = a.max_rate;
  p.described = Json{{"profile", a.profile_path},
                     {"device", profile.value("device", "")},
                     {"model", model},
                     {"gpus", a.gpus},
                     {"kv_blocks_per_instance", in.num_kv_blocks},
                     {"kv_bytes_per_token", in.transfer.kv_bytes_per_token},
                     {"workload", bench::settings_json(a.w)},
                     {"slo", a.w.slo},
                     {"transfer_gbps", a.transfer_gbps},
                     {"policy", a.policy}};
  return p;
}

void print_plan(const Plan& plan, const FitReport& fit) {
  std::cout << fmt::format(
      "step-time model: {} measurements ({} whole steps, the rest kernels timed alone); over the steps RMS error "
      "{:.1f}%, max {:.1f}%\n",
      fit.num_samples, fit.num_whole_steps, 100 * fit.rms_rel_error, 100 * fit.max_rel_error);
  std::cout << fmt::format("{:<12} {:>12} {:>17} {:>22}  {}\n", "deployment", "max " + plan.rate_unit, "band",
                           "token budget", "breaks first");
  for (size_t i = 0; i < plan.deployments.size(); ++i) {
    const DeploymentPlan& d = plan.deployments[i];
    const std::string budget = d.num_agg > 0 ? std::to_string(d.prefill_budget)
                                             : fmt::format("P {} / D {}", d.prefill_budget, d.decode_budget);
    std::cout << fmt::format("{:<12} {:>12.3g} {:>8.3g} - {:<6.3g} {:>22}  {}{}\n", d.name, d.max_rate, d.rate_low,
                             d.rate_high, budget, d.first_broken.empty() ? "-" : d.first_broken,
                             static_cast<int>(i) == plan.recommended ? "   <- recommended" : "");
  }
  if (plan.recommended < 0) std::cout << "no deployment meets the SLO at any rate searched\n";
}

void print_validation(const Validation& v) {
  std::cout << fmt::format("{:<20} {:<10} {:<16} {:>16} {:>10} {:>8} {:>6}  {}\n", "workload", "deployment", "card",
                           "measured (fail)", "predicted", "error", "warm", "breaks first: measured / predicted");
  for (const ValidationCell& c : v.cells) {
    const std::string measured = c.measured_failed_rps > 0
                                     ? fmt::format("{:.3g} ({:.3g})", c.measured_rps, c.measured_failed_rps)
                                     : fmt::format("{:.3g} (-)", c.measured_rps);
    if (!c.predicted()) {
      std::cout << fmt::format("{:<20} {:<10} {:<16} {:>16}  skipped: {}\n", c.workload, c.deployment, c.card, measured,
                               c.skipped);
      continue;
    }
    std::cout << fmt::format("{:<20} {:<10} {:<16} {:>16} {:>10.3g} {:>+7.0f}%{} {:>6.3g}  {} / {}\n", c.workload,
                             c.deployment, c.card, measured, c.predicted_rps, 100 * c.rel_error,
                             c.in_measured_bracket ? "*" : " ", c.predicted_warm_rps,
                             c.measured_broke_first.empty() ? "-" : c.measured_broke_first,
                             c.predicted_broke_first.empty() ? "-" : c.predicted_broke_first);
  }
  size_t right = 0;
  for (const ValidationWorkload& w : v.workloads) {
    right += w.within_5pct ? 1 : 0;
    std::cout << fmt::format("{}: measured best {} ({:.3g}); predicted best {} (measured {:.3g}){}\n", w.workload,
                             w.measured_best, w.measured_best_rps, w.predicted_best, w.predicted_best_measured_rps,
                             w.within_5pct ? "" : "  <- more than 5% below the best");
  }
  std::cout << fmt::format(
      "{} of {} cells predicted: median |error| {:.1f}%, max {:.1f}%; {} inside the measured bracket (*: between "
      "the rate that passed and the one that failed); recommendation within 5% of the measured best on {} of {} "
      "workloads\n",
      v.num_predicted, v.cells.size(), 100 * v.median_abs_rel_error, 100 * v.max_abs_rel_error, v.num_in_bracket, right,
      v.workloads.size());
  std::cout << fmt::format(
      "{} of {} measured rates inside the prediction's band (every step longer and shorter by the fit's RMS error)\n",
      v.num_in_band, v.num_predicted);
  if (v.num_trials > 0) {
    std::cout << fmt::format("{} of {} measured trials replayed get the measured verdict (PASS or FAIL)\n",
                             v.num_trial_verdicts_agree, v.num_trials);
  }
}

Status run_validation(const PlanArgs& a) {
  ValidationOptions o;
  o.results_dir = a.validate_dir;
  o.profiles_dir = a.profiles_dir;
  o.gpu_memory_gib = a.gpu_memory_gib;
  o.transfer_gbps = a.transfer_gbps;
  o.transfer_latency_s = a.transfer_latency_ms / 1000.0;
  o.router_hop_s = a.router_hop_ms / 1000.0;
  o.compare_trials = a.compare_trials;
  o.records_dir = a.sim_records_dir;
  o.as_swept = !a.steady_state;
  o.transfer_results = a.transfer_results;
  BATON_ASSIGN_OR_RETURN(Validation v, validate_results(o));
  if (a.json_given && a.json_path.empty()) {
    std::cout << dump_json(v.to_json(), 2) << "\n";
    return Status::ok();
  }
  print_validation(v);
  if (!a.json_path.empty()) {
    BATON_RETURN_IF_ERROR(write_file(a.json_path, dump_json(v.to_json(), 2) + "\n"));
    std::cout << "wrote " << a.json_path << "\n";
  }
  return Status::ok();
}

Status run_plan(const PlanArgs& a) {
  if (!a.validate_dir.empty()) return run_validation(a);
  if (a.profile_path.empty()) return invalid_argument("--profile is required (or --validate RESULTS_DIR)");
  if (a.gpus < 1) return invalid_argument("--gpus is required (or --validate RESULTS_DIR)");
  if (a.json_given && a.json_path.empty()) {
    return invalid_argument("--json needs a file name here (it prints to the terminal with --validate only)");
  }
  BATON_ASSIGN_OR_RETURN(Prepared p, prepare(a));
  BATON_ASSIGN_OR_RETURN(Plan plan, make_plan(p.inputs));
  print_plan(plan, p.fit);
  std::vector<CrossoverMap> maps;
  if (a.maps && a.gpus >= 2) {
    BATON_ASSIGN_OR_RETURN(CrossoverMap io, crossover_map(p.inputs, input_len_axis({256, 1024, 4096, 8192}),
                                                          output_len_axis({32, 128, 512, 2048})));
    maps.push_back(std::move(io));
    if (std::any_of(p.inputs.slo.targets.begin(), p.inputs.slo.targets.end(),
                    [](const bench::SloTarget& t) { return t.metric == "tpot"; })) {
      BATON_ASSIGN_OR_RETURN(CrossoverMap hit, crossover_map(p.inputs, prefix_hit_axis({0, 0.25, 0.5, 0.75, 0.9}),
                                                             tpot_limit_axis({15, 25, 40, 60, 100})));
      maps.push_back(std::move(hit));
    }
  }
  Json doc{
      {"inputs", p.described}, {"model", p.inputs.model.to_json()}, {"fit", p.fit.to_json()}, {"plan", plan.to_json()}};
  for (const CrossoverMap& m : maps) doc["crossover_maps"].push_back(m.to_json());
  if (!a.json_path.empty()) {
    BATON_RETURN_IF_ERROR(write_file(a.json_path, dump_json(doc, 2) + "\n"));
    std::cout << "wrote " << a.json_path << "\n";
  }
  if (!a.html_path.empty()) {
    PlanReportInputs r{fmt::format("baton plan: {} on {} GPUs", p.described["model"].get<std::string>(), a.gpus),
                       p.described,
                       p.inputs.model.to_json(),
                       p.fit,
                       p.fit_labels,
                       plan,
                       maps};
    BATON_RETURN_IF_ERROR(write_file(a.html_path, render_plan_html(r)));
    std::cout << "wrote " << a.html_path << "\n";
  }
  return Status::ok();
}

cli::RunFn setup(CLI::App& sub) {
  auto a = std::make_shared<PlanArgs>();
  sub.add_option("--profile", a->profile_path, "`baton profile` JSON of the model on the card");
  sub.add_option("--model", a->model, "the profile's model entry (a preset name; default: the first)");
  sub.add_option("--gpus", a->gpus, "GPUs to deploy over (one per instance)")->check(CLI::Range(1, 1024));
  cli::add_workload_flags(sub, a->w);
  sub.add_option("--token-budgets", a->token_budgets, "max_num_batched_tokens values tried per role")
      ->delimiter(',')
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  sub.add_option("--max-num-seqs", a->max_num_seqs, "running sequences per instance")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  sub.add_option("--block-size", a->block_size, "KV block size in tokens")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub.add_option("--kv-blocks", a->kv_blocks, "KV blocks per instance (else from --gpu-memory-gib)")
      ->check(CLI::Range(1, 1 << 30));
  sub.add_option("--gpu-memory-gib", a->gpu_memory_gib, "the card's memory, for the KV capacity")
      ->check(CLI::Range(1.0, 1e6));
  sub.add_option("--gpu-memory-utilization", a->gpu_memory_utilization, "share of it an instance uses")
      ->check(CLI::Range(0.05, 1.0))
      ->capture_default_str();
  sub.add_option("--transfer-gbps", a->transfer_gbps, "KV pull bandwidth between instances, GB/s")
      ->check(CLI::Range(0.001, 1e5))
      ->capture_default_str();
  sub.add_option("--transfer-latency-ms", a->transfer_latency_ms, "per pull")
      ->check(CLI::Range(0.0, 1e5))
      ->capture_default_str();
  sub.add_option("--router-hop-ms", a->router_hop_ms, "per router hop")
      ->check(CLI::Range(0.0, 1e5))
      ->capture_default_str();
  sub.add_option("--policy", a->policy, "routing: round_robin or least_loaded")->capture_default_str();
  sub.add_option("--max-rate", a->max_rate, "the search's ceiling")
      ->check(CLI::Range(0.01, 1e7))
      ->capture_default_str();
  sub.add_flag("--maps", a->maps, "add crossover maps (input x output length; prefix hits x TPOT limit)");
  sub.add_option("--json", a->json_path, "write the plan as JSON (--validate: to this file, or to stdout when no file)")
      ->expected(0, 1);
  sub.add_option("--validate", a->validate_dir,
                 "predict every cell of a recorded sweep (its --out folder) and set it against what it measured");
  sub.add_option("--profiles", a->profiles_dir, "--validate: the cards' profiles (default: RESULTS_DIR/profiles)");
  sub.add_flag("--compare-trials", a->compare_trials,
               "--validate: replay each measured trial (its rate and seed) in the simulator; the JSON gets "
               "measured and simulated TTFT/TPOT percentiles per trial");
  sub.add_option("--transfer-results", a->transfer_results,
                 "--validate: a `baton bench-transfer --json` result; PD cells' KV pulls are fitted from its rows of "
                 "their transport (latency + bytes / bandwidth) instead of --transfer-gbps and --transfer-latency-ms");
  sub.add_flag("--steady-state", a->steady_state,
               "--validate: judge the planner's own search on warm processes (steady state) instead of the sweep's "
               "search run again on processes that start cold (docs/planner.md)");
  sub.add_option(
      "--sim-records", a->sim_records_dir,
      "--validate: write each replayed trial's simulated requests to DIR/DEPLOYMENT/WORKLOAD.sim.requests.jsonl");
  sub.add_option("--html", a->html_path, "write the plan as a self-contained HTML report");
  return [a, &sub]() -> int {
    cli::note_given_workload_flags(sub, a->w);
    a->json_given = sub.count("--json") > 0;
    Status st = run_plan(*a);
    if (!st.is_ok()) {
      std::cerr << "baton plan: " << st.message() << "\n";
      return 2;
    }
    return 0;
  };
}

}  // namespace

baton::cli::CommandSpec baton::cli::plan_command() {
  return {"plan", "Predict the max sustainable rate of agg and every PD split before spending GPUs", &setup};
}

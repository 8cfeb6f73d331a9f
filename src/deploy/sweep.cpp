#include "deploy/sweep.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>

#include <fmt/format.h>

#include "bench/bench_result.h"
#include "bench/bench_run.h"
#include "bench/rate_search.h"
#include "bench/trial_engine.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/json.h"
#include "deploy/metrics_sampler.h"
#include "deploy/sampled_run.h"
#include "deploy/supervisor.h"
#include "deploy/sweep_trials.h"

namespace baton::deploy {

namespace fs = std::filesystem;

std::string result_path(const std::string& out_dir, const std::string& deployment, const std::string& workload) {
  return (fs::path(out_dir) / "results" / deployment / (workload + ".json")).string();
}

std::string requests_path(const std::string& out_dir, const std::string& deployment, const std::string& workload) {
  return (fs::path(out_dir) / "results" / deployment / (workload + ".requests.jsonl")).string();
}

std::string partial_path(const std::string& out_dir, const std::string& deployment, const std::string& workload) {
  return (fs::path(out_dir) / "results" / deployment / (workload + ".partial.jsonl")).string();
}

bool result_on_disk(const std::string& out_dir, const std::string& deployment, const std::string& workload) {
  std::string path = result_path(out_dir, deployment, workload);
  if (!path_exists(path)) return false;
  return bench::load_result(path).is_ok();
}

namespace {

// The Qwen3 vocabulary of the embedded default model.
constexpr int64_t kDefaultVocabSize = 151936;

int64_t model_vocab_size(const DeploySpec& spec) {
  if (spec.model.empty()) return kDefaultVocabSize;
  auto config = read_json_file((fs::path(spec.model) / "config.json").string());
  if (!config.is_ok() || !config->contains("vocab_size") || !(*config)["vocab_size"].is_number_integer()) {
    return kDefaultVocabSize;
  }
  return (*config)["vocab_size"].get<int64_t>();
}

std::string utc_now() {
  char stamp[32];
  std::time_t t = std::time(nullptr);
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return stamp;
}

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

// The names of the GPUs a CUDA deployment uses, one entry per GPU (an
// instance at tensor_parallel_size N has N), from nvidia-smi (empty when it is not there).
Json gpu_names(const std::vector<InstanceSpec>& instances) {
  Json names = Json::array();
  for (const auto& inst : instances) {
    for (int gpu : inst.gpus) {
      std::string cmd = fmt::format("nvidia-smi --query-gpu=name --format=csv,noheader -i {} 2>/dev/null", gpu);
      std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
      if (!pipe) continue;
      char line[256] = {};
      std::string name;
      if (std::fgets(line, sizeof(line), pipe.get())) name = line;
      while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
      names.push_back({{"instance", inst.name}, {"gpu", gpu}, {"name", name}});
    }
  }
  return names;
}

// What the sampler watches during a trial: every instance, then the router.
std::vector<SampleTarget> sample_targets(const DeploySpec& spec, const Supervisor& sup) {
  std::vector<SampleTarget> targets;
  for (const auto& inst : sup.instances()) targets.push_back({inst.name, role_name(inst.role), inst.url(spec.host)});
  targets.push_back({"router", "router", sup.endpoint()});
  return targets;
}

Json spec_json(const ExperimentDeployment& d) {
  const DeploySpec& s = d.spec;
  Json j{{"name", d.name},
         {"source", d.source},
         {"mode", s.mode},
         {"device", s.device},
         {"model", s.model.empty() ? "default" : s.model},
         {"router_policy", s.router_policy},
         {"engine_args", s.engine_args}};
  if (s.mode == "agg") {
    j["replicas"] = s.agg.replicas;
    j["kv_cache_dtype"] = s.kv_cache_dtype_of(s.agg);
  } else {
    j["kv_cache_dtype"] = s.kv_cache_dtype_of(s.prefill);  // the spec refuses a decode of another
    j["kv_transport"] = s.kv_transport;
    j["prefill"] = {{"replicas", s.prefill.replicas}, {"engine_args", s.prefill.engine_args}};
    j["decode"] = {{"replicas", s.decode.replicas}, {"engine_args", s.decode.engine_args}};
    if (!s.router_disagg.empty()) j["router_disagg"] = s.router_disagg;
    if (s.mode == "adaptive") j["role_control"] = s.role_control;  // the first roles are prefill/decode's
  }
  return j;
}

bool selected(const std::vector<std::string>& only, const std::string& name) {
  if (only.empty()) return true;
  for (const auto& n : only) {
    if (n == name) return true;
  }
  return false;
}

class SweepRunner {
 public:
  SweepRunner(const Experiment& e, const SweepOptions& o) : e_(e), o_(o) {}

  Result<SweepSummary> run() {
    BATON_RETURN_IF_ERROR(check_filters());
    // What is to run, per deployment; refuse to overwrite without resume.
    std::vector<std::string> existing;
    std::vector<std::vector<const ExperimentWorkload*>> todo(e_.deployments.size());
    for (size_t i = 0; i < e_.deployments.size(); ++i) {
      const auto& d = e_.deployments[i];
      if (!selected(o_.only_deployments, d.name)) continue;
      for (const auto& w : e_.workloads) {
        if (!e_.runs(d, w) || !selected(o_.only_workloads, w.name)) continue;
        if (result_on_disk(o_.out_dir, d.name, w.name)) {
          existing.push_back(d.name + "/" + w.name);
          ++summary_.num_skipped;
          continue;
        }
        if (path_exists(partial_path(o_.out_dir, d.name, w.name))) {
          existing.push_back(d.name + "/" + w.name + " (unfinished search)");
        }
        todo[i].push_back(&w);
      }
    }
    if (!existing.empty() && !o_.resume) {
      return failed_precondition(
          "{} result(s) already in '{}' (first: {}): pass --resume to keep them and run only what is missing, "
          "or choose another --out",
          existing.size(), o_.out_dir, existing.front());
    }
    std::error_code ec;
    fs::create_directories(o_.out_dir, ec);
    if (ec) return unavailable("cannot create '{}': {}", o_.out_dir, ec.message());
    BATON_RETURN_IF_ERROR(write_file((fs::path(o_.out_dir) / "experiment.yaml").string(), e_.source_text));
    for (const auto& name : existing) {
      say(name.find("(unfinished") == std::string::npos ? "on disk, not run again: " + name
                                                        : "on disk, to be continued: " + name);
    }
    // The budget counts from here: the checks above take no measurable time for a user, but a
    // budget shorter than them (a test's) would stop the sweep before any deployment came up.
    sweep_clock_.reset();
    for (size_t i = 0; i < e_.deployments.size() && !interrupted(); ++i) {
      const auto& d = e_.deployments[i];
      if (todo[i].empty()) continue;
      if (budget_spent()) break;  // bringing a deployment up only to stop would waste the time
      run_deployment(d, todo[i]);
    }
    summary_.interrupted = interrupted();
    return summary_;
  }

 private:
  bool interrupted() const { return (o_.stop_requested && o_.stop_requested->load()) || budget_spent_; }
  // Whether no new trial may start; latches, so the sweep stops as after a signal.
  bool budget_spent() {
    if (o_.time_budget_s > 0 && sweep_clock_.elapsed_s() > o_.time_budget_s) budget_spent_ = true;
    return budget_spent_;
  }

  void say(const std::string& line) {
    if (o_.log) o_.log(line);
  }

  Status check_filters() {
    for (const auto& n : o_.only_deployments) {
      if (!e_.find_deployment(n)) return invalid_argument("--deployments names '{}', which the experiment lacks", n);
    }
    for (const auto& n : o_.only_workloads) {
      bool found = false;
      for (const auto& w : e_.workloads) found |= w.name == n;
      if (!found) return invalid_argument("--workloads names '{}', which the experiment lacks", n);
    }
    return Status::ok();
  }

  void fail(const std::string& what, const std::string& why) {
    summary_.failures.push_back(what + ": " + why);
    say("FAILED " + what + ": " + why);
  }

  void run_deployment(const ExperimentDeployment& d, const std::vector<const ExperimentWorkload*>& workloads) {
    events_ = Json::array();
    const std::string log_dir = (fs::path(o_.out_dir) / "logs" / d.name).string();
    SupervisorOptions so;
    so.baton_binary = o_.baton_binary;
    so.run_dir = log_dir;
    so.on_event = [this, &d](const std::string& m) {
      events_.push_back(utc_now() + " " + m);
      say("[" + d.name + "] " + m);
    };
    say(fmt::format("=== {}: bringing it up ({} workload(s) to run)", d.name, workloads.size()));
    Supervisor sup(d.spec, so);
    Status st = sup.start();
    if (!st.is_ok()) {
      for (const auto* w : workloads) fail(d.name + "/" + w->name, "deployment did not come up: " + st.message());
      sup.stop();
      return;
    }
    Json gpus = gpu_names(sup.instances());
    Status health = Status::ok();
    for (const auto* w : workloads) {
      if (interrupted()) break;
      if (!health.is_ok()) {  // the router or an instance is gone for good: the rest would fail too
        fail(d.name + "/" + w->name, "not run: the deployment broke: " + health.message());
        continue;
      }
      Status r = run_workload(d, *w, &sup, gpus, log_dir);
      if (!r.is_ok()) fail(d.name + "/" + w->name, r.message());
      health = sup.poll();
    }
    say(fmt::format("=== {}: tearing it down", d.name));
    sup.stop();
  }

  // What every trial of workload `w` on deployment `d` runs (the search sets the rate, the engine the seed).
  bench::BenchConfig trial_config(const ExperimentDeployment& d, const ExperimentWorkload& w,
                                  const std::string& endpoint) const {
    bench::BenchConfig cfg;
    cfg.label = d.name;
    cfg.workload = w.options;
    if (cfg.workload.vocab_size <= 0) cfg.workload.vocab_size = model_vocab_size(d.spec);
    cfg.slo = w.slo;
    cfg.early_stop = true;  // a trial stops once its FAIL is certain (its summary says stopped_early)
    auto& l = cfg.load;
    l.url = endpoint;
    l.model = d.spec.name;
    l.prompt_format = cfg.workload.prompt_format;
    l.vocab_size = cfg.workload.vocab_size;
    l.max_concurrency = w.max_concurrency;
    l.num_warmup = w.num_warmup;
    l.warmup_s = w.warmup_s;
    l.request_timeout_s = e_.request_timeout_s;
    l.num_threads = e_.num_threads;
    return cfg;
  }

  // The trials of an earlier, unfinished search of this pair (none when they ran on other cards).
  Result<std::vector<Json>> load_replay(const std::string& tag, const std::string& partial, const Json& gpus) {
    if (!path_exists(partial)) return std::vector<Json>{};
    BATON_ASSIGN_OR_RETURN(auto replay, read_partial_trials(partial));
    // Trials measured on other cards are not this search's: a result mixes no cards.
    const std::string cards = gpu_cards(gpus);
    const std::string then = replay.empty() ? cards : gpu_cards(replay.front().value("gpus", Json::array()));
    if (then != cards) {
      say(
          fmt::format("--- {}: {} trial(s) of an unfinished search on disk ran on {}, this host has {}: "
                      "searching again",
                      tag, replay.size(), then.empty() ? "unrecorded cards" : then, cards.empty() ? "none" : cards));
      std::error_code ec;
      fs::remove(partial, ec);
      return std::vector<Json>{};
    }
    say(fmt::format("--- {}: {} trial(s) of an unfinished search on disk; replaying them", tag, replay.size()));
    return replay;
  }

  // One search's state on disk: the trials run (or replayed) so far, as the partial file holds them.
  struct SearchState {
    std::string tag, unit, partial;
    std::vector<Json> entries;  // one per trial
    std::vector<Json> replay;   // trials of an earlier, unfinished search of this pair
    bool replaying = false;
    std::vector<InstanceLoad> loads;  // of the last trial run
  };

  // Before a trial: replay it from disk while the search retraces the unfinished one; else check that it may run.
  Result<std::optional<bench::TrialOutcome>> before_trial(SearchState& s, size_t k, double rate, Supervisor* sup) {
    if (s.replaying && k < s.replay.size() && std::abs(s.replay[k].value("rate", -1.0) - rate) <= 1e-9 * rate) {
      s.entries.push_back(s.replay[k]);
      say(fmt::format("    {} trial {} at {:.3f} {}: from disk -> {}", s.tag, k, rate, s.unit,
                      s.replay[k].value("sustainable", false) ? "PASS" : "FAIL"));
      return std::optional<bench::TrialOutcome>(trial_of(s.replay[k]));
    }
    if (s.replaying) {  // the search went elsewhere (settings changed): keep only what matched
      s.replaying = false;
      BATON_RETURN_IF_ERROR(write_partial(s.partial, s.entries));
    }
    if (interrupted()) return aborted("interrupted");
    if (budget_spent()) return aborted("the time budget is spent");
    BATON_RETURN_IF_ERROR(sup->poll());
    return std::optional<bench::TrialOutcome>();
  }

  // After a trial ran: log it, keep it on disk, hand the search its verdict.
  Result<bench::TrialOutcome> after_trial(SearchState& s, const ExperimentWorkload& w, size_t k, double rate,
                                          bench::RunReport rep, const Json& gpus, std::ofstream& bench_log) {
    bench_log << "trial " << k << "\n" << bench::format_run(rep);
    if (!s.loads.empty()) {
      bench_log << "  instances during the trial (" << w.name << ".metrics.jsonl):\n" << format_instance_loads(s.loads);
    }
    bench_log << std::flush;
    // A stopped trial cancelled its requests in flight: its latencies are of the few that
    // finished (often none), so the line gives the reason instead.
    std::string measured = rep.load.stopped_early
                               ? fmt::format("stopped after {:.0f} s: {}", rep.load.wall_s, rep.load.stop_reason)
                               : fmt::format("TTFT p90 {:.1f} ms, TPOT p90 {:.2f} ms", rep.metrics.ttft_s.p90 * 1e3,
                                             rep.metrics.tpot_s.p90 * 1e3);
    say(fmt::format("    {} trial {} at {:.3f} {}: {} ok, {} failed; {} -> {}", s.tag, k, rep.target_rate, s.unit,
                    rep.metrics.num_ok, rep.metrics.num_failed, measured,
                    rep.slo.sustainable ? "PASS" : "FAIL (" + rep.slo.first_broken + ")"));
    if (rep.load.fell_behind) say("    WARNING: " + rep.load.warning);
    Json entry = trial_entry(k, rate, std::move(rep), w.slo);
    entry["gpus"] = gpus;
    entry["run"]["instances"] = instance_loads_json(s.loads);  // the result file's runs[k].instances
    BATON_RETURN_IF_ERROR(append_partial(s.partial, entry));
    s.entries.push_back(std::move(entry));
    return trial_of(s.entries.back());
  }

  // The trial engine's hooks for one search: replay, sample each instance around the trial, keep it on disk.
  bench::TrialHooks trial_hooks(SearchState& s, const ExperimentDeployment& d, const ExperimentWorkload& w,
                                Supervisor* sup, const Json& gpus, const std::string& log_dir,
                                std::ofstream& bench_log) {
    bench::TrialHooks h;
    h.before = [this, &s, sup](size_t k, std::optional<double> rate) {
      return before_trial(s, k, rate.value_or(0), sup);
    };
    h.run = [this, &s, &d, &w, sup, log_dir](const bench::BenchConfig& c, std::optional<double> rate,
                                             size_t k) -> Result<bench::RunReport> {
      // Each instance's queue, batch and KV over the trial, beside the client's view.
      MetricsSamplerOptions mo{.out_path = (fs::path(log_dir) / (w.name + ".metrics.jsonl")).string(),
                               .tags = {{"trial", k}, {"rate", rate.value_or(0)}}};
      auto warn = [this](const std::string& m) { say("    WARNING: " + m); };
      BATON_ASSIGN_OR_RETURN(auto run, run_sampled(c, rate, sample_targets(d.spec, *sup), mo, warn));
      s.loads = std::move(run.loads);
      return std::move(run.report);
    };
    h.after = [this, &s, &w, &gpus, &bench_log](size_t k, std::optional<double> rate, bench::RunReport rep) {
      return after_trial(s, w, k, rate.value_or(0), std::move(rep), gpus, bench_log);
    };
    return h;
  }

  Status run_workload(const ExperimentDeployment& d, const ExperimentWorkload& w, Supervisor* sup, const Json& gpus,
                      const std::string& log_dir) {
    SearchState s;
    s.tag = d.name + "/" + w.name;
    s.unit = bench::rate_unit(w.options.kind);  // multi-turn: sessions/s
    s.partial = partial_path(o_.out_dir, d.name, w.name);
    const bench::BenchConfig cfg = trial_config(d, w, sup->endpoint());
    BATON_ASSIGN_OR_RETURN(bench::SearchOptions search, effective_search(w, d.name));
    std::ofstream bench_log(fs::path(log_dir) / (w.name + ".bench.log"), std::ios::app);
    std::error_code ec;
    fs::create_directories(fs::path(s.partial).parent_path(), ec);
    if (ec) return unavailable("cannot create '{}': {}", fs::path(s.partial).parent_path().string(), ec.message());
    BATON_ASSIGN_OR_RETURN(s.replay, load_replay(s.tag, s.partial, gpus));
    s.replaying = !s.replay.empty();
    Stopwatch clock;
    say(fmt::format("--- {}: searching (slo {}, start {:.3g} {}, precision {:.2g}, {} trials at most)", s.tag,
                    w.slo_text, search.start_rate, s.unit, search.precision, search.max_trials));
    bench::TrialEngine engine(cfg, bench::series_seed(w.options.seed, w.name),
                              trial_hooks(s, d, w, sup, gpus, log_dir, bench_log));
    auto res = engine.search(search);
    if (!res.is_ok()) {
      if (!s.entries.empty()) {
        say(fmt::format("--- {}: {} trial(s) kept in {}; --resume continues", s.tag, s.entries.size(), s.partial));
      }
      return res.status();
    }
    BATON_RETURN_IF_ERROR(
        write_result(d, w, search, cfg.workload.vocab_size, gpus, *res, s.entries, clock.elapsed_s()));
    fs::remove(s.partial, ec);
    ++summary_.num_run;
    say(fmt::format("--- {}: max sustainable {}{:.3f} {} (lowest failed {}; broke first: {}) in {:.0f} s -> {}", s.tag,
                    res->converged || std::isfinite(res->min_failed_rate) ? "" : ">= ", res->max_passed_rate, s.unit,
                    std::isfinite(res->min_failed_rate) ? fmt::format("{:.3f}", res->min_failed_rate) : "none",
                    res->broke_first.empty() ? "-" : res->broke_first, clock.elapsed_s(),
                    result_path(o_.out_dir, d.name, w.name)));
    return Status::ok();
  }

  // Writes a finished search: its per-request records, then its result document.
  Status write_result(const ExperimentDeployment& d, const ExperimentWorkload& w, const bench::SearchOptions& search,
                      int64_t vocab_size, const Json& gpus, const bench::SearchResult& res,
                      const std::vector<Json>& entries, double wall_s) {
    bench::BenchOutcome outcome;
    outcome.label = d.name;
    outcome.slo = w.slo;
    outcome.search = res;
    outcome.config = Json{{"sweep",
                           {{"experiment", e_.name},
                            {"deployment", spec_json(d)},
                            {"workload", w.name},
                            {"workload_settings", w.describe},
                            {"slo", w.slo_text},
                            {"search",
                             {{"start_rate", search.start_rate},
                              {"precision", search.precision},
                              {"max_trials", search.max_trials},
                              {"max_rate", search.max_rate},
                              {"min_rate", search.min_rate},
                              {"close_margin", search.close_margin},
                              {"num_requests", w.options.num_requests},
                              {"warmup", w.num_warmup},
                              {"warmup_s", w.warmup_s},
                              {"seed", w.options.seed}}},
                            {"vocab_size", vocab_size},
                            {"threads", e_.num_threads},
                            {"host", hostname()},
                            {"gpus", gpus},
                            {"finished_utc", utc_now()},
                            {"search_wall_s", wall_s},
                            {"supervisor_events", events_}}}};
    Json doc = document_of(outcome, entries);
    // Per-request records first: the summary's presence is what marks the result done.
    std::string lines;
    for (const auto& e : entries) {
      for (const auto& r : e["requests"]) {
        lines += r.dump();
        lines += '\n';
      }
    }
    BATON_RETURN_IF_ERROR(write_atomically(requests_path(o_.out_dir, d.name, w.name), lines));
    return write_atomically(result_path(o_.out_dir, d.name, w.name), doc.dump(2) + "\n");
  }

  const Experiment& e_;
  const SweepOptions& o_;
  SweepSummary summary_;
  Json events_ = Json::array();
  Stopwatch sweep_clock_;
  bool budget_spent_ = false;
};

}  // namespace

std::string gpu_cards(const Json& gpus) {
  if (!gpus.is_array()) return "";
  std::vector<std::pair<std::string, int>> counts;  // in first-seen order
  for (const auto& g : gpus) {
    const std::string name = g.is_object() ? g.value("name", std::string()) : std::string();
    if (name.empty()) continue;
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == name; });
    if (it == counts.end()) counts.emplace_back(name, 1);
    else ++it->second;
  }
  std::sort(counts.begin(), counts.end());  // the same set reads the same whatever the instance order
  std::string out;
  for (const auto& [name, n] : counts) out += (out.empty() ? "" : " + ") + fmt::format("{}x {}", n, name);
  return out;
}

Result<SweepSummary> run_sweep(const Experiment& experiment, const SweepOptions& options) {
  if (options.out_dir.empty()) return invalid_argument("the sweep needs an output folder");
  if (options.baton_binary.empty()) return invalid_argument("the sweep needs the baton binary to start processes");
  SweepRunner runner(experiment, options);
  return runner.run();
}

}  // namespace baton::deploy

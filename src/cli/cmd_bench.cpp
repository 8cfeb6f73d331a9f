// `baton bench`: drive an OpenAI-compatible endpoint with open-loop load,
// measure TTFT/TPOT/ITL/E2E, judge an SLO, search the max sustainable rate,
// and write JSON, JSONL, CSV and a self-contained HTML report.
// `baton bench compare A.json B.json ... --baseline LABEL`: side by side.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "bench/bench_result.h"
#include "bench/bench_run.h"
#include "bench/html_report.h"
#include "bench/rate_search.h"
#include "bench/sim_server.h"
#include "bench/trial_engine.h"
#include "bench/workload_schema.h"
#include "cli/bench_watch.h"
#include "cli/command.h"
#include "cli/workload_flags.h"
#include "common/log.h"
#include "http/http_client.h"

namespace {

using namespace baton;
using namespace baton::bench;

struct BenchArgs {
  std::string url = "http://127.0.0.1:8000";
  std::string endpoint = "/v1/completions";
  std::string model;
  WorkloadSettings w;  // the workload options (bench/workload_schema.h); w.vocab_size 0: ask the server
  double rate = 1.0;
  bool search = false;
  bool early_stop = false, no_early_stop = false;
  std::string sweep;
  double search_start = 1.0;
  double search_precision = 0.05;
  double search_max_rate = 1e4;
  int search_max_trials = 40;
  double search_close_margin = 0.05;
  std::string out;
  std::string watch;  // NAME=URL,... of the instances to sample during each run
  std::string label = "default";
  int threads = 1;
  double timeout_s = 600;
  std::string extra_body;
  bool no_progress = false;
  // compare
  std::vector<std::string> compare_files;
  std::string baseline;
  std::string compare_out;
  // sim-server
  SimServerOptions sim;
  double sim_first_ms = 0, sim_token_ms = 0;
};

int run_sim_server(BenchArgs& a) {
  a.sim.first_token_delay_s = a.sim_first_ms * 1e-3;
  a.sim.per_token_delay_s = a.sim_token_ms * 1e-3;
  SimServer server(a.sim);
  auto st = server.start();
  if (!st.is_ok()) {
    std::cerr << "error: " << st.to_string() << "\n";
    return 1;
  }
  std::cout << "sim server listening on " << server.url() << " (slots "
            << (a.sim.num_slots ? std::to_string(a.sim.num_slots) : std::string("unlimited")) << ", first token "
            << a.sim_first_ms << " ms, then " << a.sim_token_ms << " ms/token)" << std::endl;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
  server.stop();
  return 0;
}

void print_progress(const Progress& p) {
  std::fprintf(stderr,
               "\r\033[K[bench] %6.1fs  sent %zu/%zu  done %zu  failed %zu  in flight %zu  rate %.2f/s  "
               "p50 TTFT %s",
               p.elapsed_s, p.num_sent, p.num_total, p.num_done, p.num_failed, p.num_in_flight, p.send_rate,
               std::isnan(p.running_ttft_p50_s) ? "-" : fmt::format("{:.1f} ms", p.running_ttft_p50_s * 1e3).c_str());
  if (p.num_done == p.num_total) std::fputc('\n', stderr);
  std::fflush(stderr);
}

// Token ids are drawn below this when neither --vocab-size nor the server says
// otherwise: the vocabulary of the embedded default model.
constexpr int64_t kQwen3VocabSize = 151936;

// What GET /v1/models says of the first model: its name, and its vocabulary
// size where the server tells it (baton serve does; vLLM does not).
struct ServedModel {
  std::string id;
  int64_t vocab_size = 0;  // 0: not told
};

Result<ServedModel> discover_model(const std::string& url) {
  BATON_ASSIGN_OR_RETURN(auto base, http::parse_url(url));
  auto models_url = base.with_path("/v1/models");
  http::Request req;
  req.method = "GET";
  req.timeout_s = 10;
  BATON_ASSIGN_OR_RETURN(auto resp, http::fetch(models_url, req));
  if (resp.status != 200) return unavailable("GET {} answered HTTP {}", models_url.to_string(), resp.status);
  auto j = parse_json(resp.body, "/v1/models");
  if (!j) return j.status();
  if (!j->contains("data") || !(*j)["data"].is_array() || (*j)["data"].empty() || !(*j)["data"][0].contains("id") ||
      !(*j)["data"][0]["id"].is_string()) {
    return invalid_argument("GET {} lists no model: pass --model", models_url.to_string());
  }
  const Json& first = (*j)["data"][0];
  ServedModel m;
  m.id = first["id"].get<std::string>();
  if (auto v = first.find("vocab_size"); v != first.end() && v->is_number_integer() && v->get<int64_t>() > 0) {
    m.vocab_size = v->get<int64_t>();
  }
  return m;
}

Result<BenchConfig> make_config(const BenchArgs& a, bool rate_given) {
  BenchConfig c;
  c.label = a.label;
  BATON_ASSIGN_OR_RETURN(c.workload, to_workload_options(a.w, OptionNames::kFlag));
  auto& w = c.workload;
  w.arrival.rate = a.rate;
  w.rate_overrides_trace = w.kind == "trace" && rate_given;
  BATON_RETURN_IF_ERROR(validate(w));

  auto& l = c.load;
  l.url = a.url;
  l.endpoint = a.endpoint;
  l.model = a.model;
  l.prompt_format = w.prompt_format;
  l.vocab_size = w.vocab_size;
  l.max_concurrency = a.w.max_concurrency;
  l.num_warmup = a.w.warmup;
  l.warmup_s = a.w.warmup_s;
  l.request_timeout_s = a.timeout_s;
  l.num_threads = a.threads;
  if (!a.extra_body.empty()) {
    BATON_ASSIGN_OR_RETURN(l.extra_body, parse_json(a.extra_body, "--extra-body"));
    if (!l.extra_body.is_object()) return invalid_argument("--extra-body must be a JSON object");
  }
  if (!a.no_progress && isatty(STDERR_FILENO)) l.on_progress = print_progress;

  BATON_ASSIGN_OR_RETURN(c.slo, settings_slo(a.w, OptionNames::kFlag));
  if (a.early_stop && a.no_early_stop) return invalid_argument("--early-stop and --no-early-stop exclude each other");
  c.early_stop = a.early_stop || (a.search && !a.no_early_stop);
  return c;
}

// The run's settings for summary.json: every workload option as given (keyed as in an experiment), the
// effective workload kind under "workload", and the bench's own flags.
Json config_json(const BenchArgs& a, const BenchConfig& c) {
  Json j = settings_json(a.w);
  j.update(Json{{"seed_pinned", a.w.given.contains("seed")},
                {"url", a.url},
                {"endpoint", a.endpoint},
                {"model", c.load.model},
                {"workload", c.workload.kind},
                {"rate", a.rate},
                {"search", a.search},
                {"early_stop", c.early_stop},
                {"sweep", a.sweep},
                {"search_precision", a.search_precision},
                {"threads", a.threads}});
  return j;
}

// Fills in the model name and vocabulary size from GET /v1/models where not given.
Status resolve_model(BenchArgs& a) {
  if (!a.model.empty() && a.w.vocab_size > 0) return Status::ok();
  auto m = discover_model(a.url);
  if (!m && a.model.empty()) return invalid_argument("no --model given and none found: {}", m.status().to_string());
  if (a.model.empty()) a.model = m->id;
  if (a.w.vocab_size > 0) return Status::ok();
  if (m && m->vocab_size > 0) {
    a.w.vocab_size = m->vocab_size;
    return Status::ok();
  }
  a.w.vocab_size = kQwen3VocabSize;
  if (a.w.prompt_format == "ids") {
    std::cerr << "note: the server does not say its vocabulary size: token ids are drawn below " << kQwen3VocabSize
              << " (Qwen3's); pass --vocab-size for another model\n";
  }
  return Status::ok();
}

// "1,2,4,8" -> the rates of --sweep.
Result<std::vector<double>> parse_sweep_rates(const std::string& list) {
  std::vector<double> rates;
  for (size_t start = 0; start <= list.size();) {
    size_t comma = list.find(',', start);
    std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? list.size() + 1 : comma + 1;
    try {
      size_t used = 0;
      double r = std::stod(item, &used);
      if (used != item.size() || !(r > 0)) throw std::invalid_argument(item);
      rates.push_back(r);
    } catch (const std::exception&) {
      return invalid_argument("--sweep '{}': '{}' is not a rate > 0", list, item);
    }
  }
  return rates;
}

SearchOptions search_options(const BenchArgs& a) {
  SearchOptions so;
  so.start_rate = a.search_start;
  so.precision = a.search_precision;
  so.max_rate = std::max(a.search_max_rate, a.search_start);
  so.min_rate = std::min(1e-3, a.search_start);
  so.max_trials = a.search_max_trials;
  so.close_margin = a.search_close_margin;
  return so;
}

void print_search_result(const BenchArgs& a, const BenchOutcome& outcome) {
  const SearchResult& res = *outcome.search;
  const std::string unit = rate_unit(a.w.trace.empty() ? a.w.kind : "trace");
  auto offered = offered_rps_at(outcome, res.max_passed_rate);
  std::string best = res.max_passed_rate <= 0 ? std::string("none (no rate passed)")
                     : offered                ? fmt::format("offered {:.3f} req/s (requested {:.3f} {})", *offered,
                                                            res.max_passed_rate, unit)
                                              : fmt::format("{:.3f} {} (requested)", res.max_passed_rate, unit);
  size_t num_stopped = 0;
  for (const auto& t : res.trials) num_stopped += t.stopped_early ? 1 : 0;
  std::cout << fmt::format(
      "\n[{}] max sustainable rate: {}; lowest failed: {}; broke first: {}{}{}\n", a.label, best,
      std::isfinite(res.min_failed_rate) ? fmt::format("{:.3f} {} (requested)", res.min_failed_rate, unit) : "none",
      res.broke_first.empty() ? "-" : res.broke_first,
      num_stopped
          ? fmt::format("; {} of {} trials stopped early once their FAIL was certain", num_stopped, res.trials.size())
          : "",
      res.converged ? "" : " (did not converge: " + res.note + ")");
}

// What the trial flags ask for, checked before anything runs.
struct TrialPlan {
  std::vector<deploy::SampleTarget> watch;
  std::vector<double> rates;  // --sweep's; empty: one run at --rate, or a --search
};

Result<TrialPlan> plan_trials(const BenchArgs& a, const BenchConfig& cfg) {
  if (a.search && !a.sweep.empty()) return invalid_argument("--search and --sweep exclude each other");
  if (a.search && cfg.slo.empty()) return invalid_argument("--search needs an --slo to judge rates by");
  TrialPlan plan;
  BATON_ASSIGN_OR_RETURN(plan.watch, cli::parse_watch_targets(a.watch));
  if (!a.sweep.empty()) {
    BATON_ASSIGN_OR_RETURN(plan.rates, parse_sweep_rates(a.sweep));
  }
  return plan;
}

// Runs the trials (one rate, each --sweep rate, or a --search) through the trial engine.
Status run_trials(const BenchArgs& a, const BenchConfig& cfg, const TrialPlan& plan, BenchOutcome* outcome) {
  std::string instances;  // the peaks of the watched instances during the last trial
  TrialHooks hooks;
  hooks.run = [&](const BenchConfig& c, std::optional<double> rate, size_t index) -> Result<RunReport> {
    BATON_ASSIGN_OR_RETURN(auto run, cli::run_watched(c, rate, plan.watch, a.out, index));
    instances = std::move(run.instances);
    return std::move(run.report);
  };
  hooks.after = [&](size_t, std::optional<double>, RunReport report) -> Result<TrialOutcome> {
    std::cout << format_run(report) << instances << std::flush;
    outcome->runs.push_back(std::move(report));
    return outcome->runs.back().to_trial();
  };
  TrialEngine engine(cfg, a.w.seed, std::move(hooks));
  if (a.search) {
    BATON_ASSIGN_OR_RETURN(outcome->search, engine.search(search_options(a)));
    print_search_result(a, *outcome);
    return Status::ok();
  }
  if (plan.rates.empty()) return engine.run_trial().status();
  return engine.run_rates(plan.rates).status();
}

int run_bench(BenchArgs a, bool rate_given) {
  // A flag's own error is printed as it is; a failure while running with its status code.
  auto usage = [](const Status& st) {
    std::cerr << "error: " << st.message() << "\n";
    return 1;
  };
  auto fail = [](const Status& st) {
    std::cerr << "error: " << st.to_string() << "\n";
    return 1;
  };
  if (Status st = resolve_model(a); !st.is_ok()) return usage(st);
  if (!a.w.given.contains("seed")) {
    // A fresh seed each run, so that no run measures a prefix cache an earlier one warmed with
    // the same prompts; --seed pins it on purpose (and repeats a run).
    a.w.seed = std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32);
    std::cout << fmt::format("seed {} (drawn for this run: --seed {} sends the same prompts again)\n", a.w.seed,
                             a.w.seed);
  }
  auto cfg = make_config(a, rate_given);
  if (!cfg) return fail(cfg.status());
  auto plan = plan_trials(a, *cfg);
  if (!plan) return usage(plan.status());
  // The prefix-cache check reads the server's /metrics and the watched instances' (PD: the
  // router has no prefix cache, its prefill instances do).
  if (auto base = http::parse_url(a.url); base.is_ok()) {
    cfg->metrics_urls.push_back("http://" + base->host_port());
  }
  for (const auto& t : plan->watch) {
    if (std::find(cfg->metrics_urls.begin(), cfg->metrics_urls.end(), t.url) == cfg->metrics_urls.end()) {
      cfg->metrics_urls.push_back(t.url);
    }
  }
  BenchOutcome outcome;
  outcome.label = a.label;
  outcome.slo = cfg->slo;
  outcome.config = config_json(a, *cfg);
  if (Status st = run_trials(a, *cfg, *plan, &outcome); !st.is_ok()) return fail(st);
  std::cout << "\n" << metric_definitions();
  if (!a.out.empty()) {
    if (Status st = write_outputs(outcome, a.out); !st.is_ok()) return fail(st);
    std::cout << "wrote " << a.out << "/{summary.json,requests.jsonl,runs.csv,report.html}\n";
  }
  return 0;
}

int write_comparison(const BenchArgs& a, const std::vector<Json>& docs);

int run_compare(const BenchArgs& a) {
  std::vector<Json> docs;
  for (const auto& f : a.compare_files) {
    auto d = load_result(f);
    if (!d) {
      std::cerr << "error: " << d.status().to_string() << "\n";
      return 1;
    }
    docs.push_back(std::move(*d));
  }
  // The files are input: one whose fields the comparison reads have other
  // types, or are missing, is an error naming the files, not an abort.
  try {
    return write_comparison(a, docs);
  } catch (const Json::exception& e) {
    std::string files;
    for (const auto& f : a.compare_files) files += (files.empty() ? "" : ", ") + f;
    std::cerr << "error: the results (" << files
              << ") lack fields a comparison reads, or have them with other types: " << e.what()
              << " (were they written by this version's `baton bench --out`?)\n";
    return 1;
  }
}

int write_comparison(const BenchArgs& a, const std::vector<Json>& docs) {
  auto rows = compare_results(docs, a.baseline);
  if (!rows) {
    std::cerr << "error: " << rows.status().to_string() << "\n";
    return 1;
  }
  std::cout << format_compare(*rows, a.baseline);
  if (!a.compare_out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.compare_out, ec);
    Json table = Json::array();
    for (const auto& r : *rows) {
      table.push_back({{"label", r.label},
                       {"max_sustainable_rps", r.max_rps ? Json(*r.max_rps) : Json(nullptr)},
                       {"ratio_to_baseline", r.ratio ? Json(*r.ratio) : Json(nullptr)}});
    }
    std::string base = a.baseline.empty() ? rows->front().label : a.baseline;
    for (auto st :
         {write_file(a.compare_out + "/compare.json", Json{{"baseline", base}, {"deployments", table}}.dump(2) + "\n"),
          write_file(a.compare_out + "/runs.csv", runs_csv(docs)),
          write_file(a.compare_out + "/report.html",
                     render_html_report(docs, base, "baton bench: comparison (baseline " + base + ")"))}) {
      if (!st.is_ok()) {
        std::cerr << "error: " << st.to_string() << "\n";
        return 1;
      }
    }
    std::cout << "wrote " << a.compare_out << "/{compare.json,runs.csv,report.html}\n";
  }
  return 0;
}

cli::RunFn setup(CLI::App& sub) {
  auto a = std::make_shared<BenchArgs>();
  sub.add_option("--url", a->url, "Server base URL")->capture_default_str();
  sub.add_option("--endpoint", a->endpoint, "Completions path")->capture_default_str();
  sub.add_option("--model", a->model, "Model name (default: the first of GET /v1/models)");
  cli::add_workload_flags(sub, a->w);
  auto* rate = sub.add_option("--rate", a->rate, "Requests/s (multiturn: sessions/s; trace: rescales it)")
                   ->capture_default_str();
  sub.add_flag("--search", a->search, "Find the max sustainable rate under --slo");
  sub.add_flag("--early-stop", a->early_stop,
               "Stop a run as soon as its --slo verdict is certainly FAIL (default with --search)");
  sub.add_flag("--no-early-stop", a->no_early_stop, "Run every trial of --search to its end");
  sub.add_option("--sweep", a->sweep, "Run at each of these rates, e.g. 1,2,4,8 (instead of --rate)");
  sub.add_option("--search-start", a->search_start, "First rate of the search")->capture_default_str();
  sub.add_option("--search-precision", a->search_precision, "Relative width of the final bracket")
      ->capture_default_str();
  sub.add_option("--search-max-rate", a->search_max_rate, "Stop doubling here")->capture_default_str();
  sub.add_option("--search-max-trials", a->search_max_trials, "Trial budget")->capture_default_str();
  sub.add_option("--search-close-margin", a->search_close_margin,
                 "Repeat a trial (best of 3) when its worst target is within this fraction of its limit")
      ->capture_default_str();
  sub.add_option("--out", a->out, "Write summary.json, requests.jsonl, runs.csv, report.html here");
  sub.add_option("--watch", a->watch,
                 "Sample these instances' /metrics during each run and print their peaks (queue, batch, KV); "
                 "NAME=URL or URL, comma-separated, e.g. prefill-0=http://127.0.0.1:8100,router=http://127.0.0.1:8000. "
                 "With --out, the timeline goes to metrics.jsonl");
  sub.add_option("--label", a->label, "Deployment label for comparisons")->capture_default_str();
  sub.add_option("--threads", a->threads, "Client I/O threads")->capture_default_str();
  sub.add_option("--timeout-s", a->timeout_s, "Per-request deadline")->capture_default_str();
  sub.add_option("--extra-body", a->extra_body, "JSON object merged into every request body");
  sub.add_flag("--no-progress", a->no_progress, "No live progress line");
  auto* cmp = sub.add_subcommand("compare", "Compare result JSONs: max sustainable QPS and ratio to a baseline");
  cmp->add_option("results", a->compare_files, "summary.json files of `baton bench --out`")->required();
  cmp->add_option("--baseline", a->baseline, "Label to compare against (default: the first)");
  cmp->add_option("--out", a->compare_out, "Write compare.json, runs.csv and report.html here");
  auto* sim = sub.add_subcommand("sim-server",
                                 "Run the deterministic test server (capacity = slots / service time) until SIGINT");
  sim->add_option("--host", a->sim.host)->capture_default_str();
  sim->add_option("--port", a->sim.port, "0 picks a free port")->capture_default_str();
  sim->add_option("--slots", a->sim.num_slots, "Requests served at once (0: unlimited)")->capture_default_str();
  sim->add_option("--first-token-ms", a->sim_first_ms, "Delay to the first token")->capture_default_str();
  sim->add_option("--per-token-ms", a->sim_token_ms, "Delay between tokens")->capture_default_str();
  sim->add_option("--threads", a->sim.num_io_threads, "I/O threads")->capture_default_str();
  sim->add_option("--fail-every", a->sim.fail_every_n, "Answer every n-th request with HTTP 503");
  sub.require_subcommand(0, 1);
  return [a, cmp, rate, sim, &sub] {
    if (cmp->parsed()) return run_compare(*a);
    if (sim->parsed()) return run_sim_server(*a);
    cli::note_given_workload_flags(sub, a->w);
    return run_bench(*a, rate->count() > 0);
  };
}

}  // namespace

baton::cli::CommandSpec baton::cli::bench_command() {
  return {"bench", "Benchmark an OpenAI-compatible endpoint: latency, goodput, max sustainable QPS", &setup};
}

// `baton bench`: drive an OpenAI-compatible endpoint with open-loop load,
// measure TTFT/TPOT/ITL/E2E, judge an SLO, search the max sustainable rate,
// and write JSON, JSONL, CSV and a self-contained HTML report.
// `baton bench compare A.json B.json ... --baseline LABEL`: side by side.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <csignal>
#include <memory>
#include <optional>
#include <thread>

#include "bench/bench_result.h"
#include "bench/bench_run.h"
#include "bench/html_report.h"
#include "bench/rate_search.h"
#include "bench/sim_server.h"
#include "cli/bench_watch.h"
#include "cli/command.h"
#include "common/log.h"
#include "http/http_client.h"

namespace {

using namespace baton;
using namespace baton::bench;

struct BenchArgs {
  std::string url = "http://127.0.0.1:8000";
  std::string endpoint = "/v1/completions";
  std::string model;
  std::string workload = "random";
  std::string input_len = "512";
  std::string output_len = "128";
  double rate = 1.0;
  size_t num_requests = 200;
  double duration_s = 0;
  std::string arrival = "poisson";
  double burstiness = 1.0;
  size_t max_concurrency = 0;
  size_t warmup = 0;
  double warmup_s = 0;
  uint64_t seed = 0;
  std::string slo;
  double attainment = 0;
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
  std::string trace;
  std::string trace_format = "azure";
  double time_scale = 1.0;
  size_t prefix_groups = 8;
  double prefix_hit_rate = 0.5;
  int turns = 4;
  double think_time_s = 1.0;
  std::string prompt_format = "ids";
  int64_t vocab_size = 0;  // 0: what GET /v1/models says, else kQwen3VocabSize
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
            << (a.sim.num_slots ? std::to_string(a.sim.num_slots) : std::string("unlimited"))
            << ", first token " << a.sim_first_ms << " ms, then " << a.sim_token_ms << " ms/token)" << std::endl;
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
  if (!j->contains("data") || !(*j)["data"].is_array() || (*j)["data"].empty() ||
      !(*j)["data"][0].contains("id") || !(*j)["data"][0]["id"].is_string()) {
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
  auto& w = c.workload;
  w.kind = a.workload;
  BATON_ASSIGN_OR_RETURN(w.input_len, parse_length_range(a.input_len, "--input-len"));
  BATON_ASSIGN_OR_RETURN(w.output_len, parse_length_range(a.output_len, "--output-len"));
  w.num_requests = a.duration_s > 0 ? 0 : a.num_requests;
  w.duration_s = a.duration_s;
  BATON_ASSIGN_OR_RETURN(w.arrival.kind, parse_arrival_kind(a.arrival));
  w.arrival.rate = a.rate;
  w.arrival.burstiness = a.burstiness;
  w.arrival.seed = a.seed;
  w.seed = a.seed;
  w.num_prefix_groups = a.prefix_groups;
  w.prefix_hit_rate = a.prefix_hit_rate;
  w.num_turns = a.turns;
  w.think_time_s = a.think_time_s;
  w.trace_path = a.trace;
  if (!a.trace.empty() && a.workload == "random") w.kind = "trace";  // --trace implies the trace workload
  BATON_ASSIGN_OR_RETURN(w.trace_format, parse_trace_format(a.trace_format));
  w.time_scale = a.time_scale;
  w.rate_overrides_trace = w.kind == "trace" && rate_given;
  if (a.prompt_format == "ids") w.prompt_format = PromptFormat::kTokenIds;
  else if (a.prompt_format == "text") w.prompt_format = PromptFormat::kText;
  else return invalid_argument("--prompt-format must be ids or text (got '{}')", a.prompt_format);
  w.vocab_size = a.vocab_size;
  BATON_RETURN_IF_ERROR(validate(w));

  auto& l = c.load;
  l.url = a.url;
  l.endpoint = a.endpoint;
  l.model = a.model;
  l.prompt_format = w.prompt_format;
  l.vocab_size = a.vocab_size;
  l.max_concurrency = a.max_concurrency;
  l.num_warmup = a.warmup;
  l.warmup_s = a.warmup_s;
  l.request_timeout_s = a.timeout_s;
  l.num_threads = a.threads;
  if (!a.extra_body.empty()) {
    BATON_ASSIGN_OR_RETURN(l.extra_body, parse_json(a.extra_body, "--extra-body"));
    if (!l.extra_body.is_object()) return invalid_argument("--extra-body must be a JSON object");
  }
  if (!a.no_progress && isatty(STDERR_FILENO)) l.on_progress = print_progress;
  BATON_ASSIGN_OR_RETURN(c.slo, parse_slo(a.slo, a.attainment));
  if (a.early_stop && a.no_early_stop) return invalid_argument("--early-stop and --no-early-stop exclude each other");
  c.early_stop = a.early_stop || (a.search && !a.no_early_stop);
  return c;
}

Json config_json(const BenchArgs& a, const BenchConfig& c) {
  return Json{{"url", a.url},
              {"endpoint", a.endpoint},
              {"model", c.load.model},
              {"workload", c.workload.kind},
              {"input_len", a.input_len},
              {"output_len", a.output_len},
              {"arrival", a.arrival},
              {"burstiness", a.burstiness},
              {"rate", a.rate},
              {"num_requests", a.num_requests},
              {"duration_s", a.duration_s},
              {"max_concurrency", a.max_concurrency},
              {"warmup", a.warmup},
              {"warmup_s", a.warmup_s},
              {"seed", a.seed},
              {"slo", a.slo},
              {"attainment", a.attainment},
              {"search", a.search},
              {"early_stop", c.early_stop},
              {"sweep", a.sweep},
              {"search_precision", a.search_precision},
              {"trace", a.trace},
              {"trace_format", a.trace_format},
              {"time_scale", a.time_scale},
              {"prompt_format", a.prompt_format},
              {"vocab_size", a.vocab_size},
              {"threads", a.threads}};
}

int run_bench(BenchArgs a, bool rate_given) {
  if (a.model.empty() || a.vocab_size <= 0) {
    auto m = discover_model(a.url);
    if (!m && a.model.empty()) {
      std::cerr << "error: no --model given and none found: " << m.status().to_string() << "\n";
      return 1;
    }
    if (a.model.empty()) a.model = m->id;
    if (a.vocab_size <= 0) {
      if (m && m->vocab_size > 0) {
        a.vocab_size = m->vocab_size;
      } else {
        a.vocab_size = kQwen3VocabSize;
        if (a.prompt_format == "ids") {
          std::cerr << "note: the server does not say its vocabulary size: token ids are drawn below "
                    << kQwen3VocabSize << " (Qwen3's); pass --vocab-size for another model\n";
        }
      }
    }
  }
  auto cfg = make_config(a, rate_given);
  if (!cfg) {
    std::cerr << "error: " << cfg.status().to_string() << "\n";
    return 1;
  }
  if (a.search && !a.sweep.empty()) {
    std::cerr << "error: --search and --sweep exclude each other\n";
    return 1;
  }
  if (a.search && cfg->slo.empty()) {
    std::cerr << "error: --search needs an --slo to judge rates by\n";
    return 1;
  }
  auto watch = cli::parse_watch_targets(a.watch);
  if (!watch) {
    std::cerr << "error: " << watch.status().message() << "\n";
    return 1;
  }
  BenchOutcome outcome;
  // Each run (a search's trial, a --sweep rate) draws its own prompts: reusing
  // one seed would let a run hit the prefix cache that the runs before it filled.
  auto config_for_run = [&] {
    BenchConfig c = *cfg;
    c.workload.seed = a.seed + outcome.runs.size();
    c.workload.arrival.seed = a.seed + outcome.runs.size();
    return c;
  };
  outcome.label = a.label;
  outcome.slo = cfg->slo;
  outcome.config = config_json(a, *cfg);
  if (a.search) {
    SearchOptions so;
    so.start_rate = a.search_start;
    so.precision = a.search_precision;
    so.max_rate = std::max(a.search_max_rate, a.search_start);
    so.min_rate = std::min(1e-3, a.search_start);
    so.max_trials = a.search_max_trials;
    so.close_margin = a.search_close_margin;
    auto trial = [&](double rate) -> Result<TrialOutcome> {
      BATON_ASSIGN_OR_RETURN(auto run, cli::run_watched(config_for_run(), rate, *watch, a.out, outcome.runs.size()));
      std::cout << format_run(run.report) << run.instances << std::flush;
      outcome.runs.push_back(std::move(run.report));
      return outcome.runs.back().to_trial();
    };
    auto res = search_max_rate(trial, so);
    if (!res) {
      std::cerr << "error: " << res.status().to_string() << "\n";
      return 1;
    }
    outcome.search = *res;
    const std::string unit = rate_unit(a.trace.empty() ? a.workload : "trace");
    std::cout << fmt::format("\n[{}] max sustainable rate: {:.3f} {}; lowest failed: {}; broke first: {}{}\n",
                             a.label, res->max_passed_rate, unit,
                             std::isfinite(res->min_failed_rate) ? fmt::format("{:.3f} {}", res->min_failed_rate, unit)
                                                                 : "none",
                             res->broke_first.empty() ? "-" : res->broke_first,
                             res->converged ? "" : " (did not converge: " + res->note + ")");
  } else {
    std::vector<std::optional<double>> rates{std::nullopt};
    if (!a.sweep.empty()) {
      rates.clear();
      for (size_t start = 0; start <= a.sweep.size();) {
        size_t comma = a.sweep.find(',', start);
        std::string item = a.sweep.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? a.sweep.size() + 1 : comma + 1;
        try {
          size_t used = 0;
          double r = std::stod(item, &used);
          if (used != item.size() || !(r > 0)) throw std::invalid_argument(item);
          rates.push_back(r);
        } catch (const std::exception&) {
          std::cerr << "error: --sweep '" << a.sweep << "': '" << item << "' is not a rate > 0\n";
          return 1;
        }
      }
    }
    for (const auto& r : rates) {
      auto run = cli::run_watched(config_for_run(), r, *watch, a.out, outcome.runs.size());
      if (!run) {
        std::cerr << "error: " << run.status().to_string() << "\n";
        return 1;
      }
      std::cout << format_run(run->report) << run->instances << std::flush;
      outcome.runs.push_back(std::move(run->report));
    }
  }
  std::cout << "\n" << metric_definitions();
  for (const auto& r : outcome.runs) {
    if (r.load.fell_behind) {
      std::cerr << "\n!!!!!!!! WARNING (rate " << r.target_rate << "/s): " << r.load.warning << " !!!!!!!!\n";
    }
  }
  if (!a.out.empty()) {
    auto st = write_outputs(outcome, a.out);
    if (!st.is_ok()) {
      std::cerr << "error: " << st.to_string() << "\n";
      return 1;
    }
    std::cout << "wrote " << a.out << "/{summary.json,requests.jsonl,runs.csv,report.html}\n";
  }
  return 0;
}

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
    for (auto st : {write_file(a.compare_out + "/compare.json",
                               Json{{"baseline", base}, {"deployments", table}}.dump(2) + "\n"),
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
  sub.add_option("--workload", a->workload, "random | prefix | multiturn | trace")->capture_default_str();
  sub.add_option("--input-len", a->input_len, "Prompt tokens: N or MIN:MAX")->capture_default_str();
  sub.add_option("--output-len", a->output_len, "Output tokens (exact): N or MIN:MAX")->capture_default_str();
  auto* rate = sub.add_option("--rate", a->rate, "Requests/s (multiturn: sessions/s; trace: rescales it)")
                   ->capture_default_str();
  sub.add_option("--num-requests", a->num_requests,
                 "Requests to send (multiturn: / turns = sessions; trace: the first N, 0 = all)")
      ->capture_default_str();
  sub.add_option("--duration-s", a->duration_s, "Send for this long instead of a count");
  sub.add_option("--arrival", a->arrival, "poisson | gamma | constant")->capture_default_str();
  sub.add_option("--burstiness", a->burstiness, "Gamma shape (1 = Poisson, < 1 burstier)")->capture_default_str();
  sub.add_option("--max-concurrency", a->max_concurrency, "Cap on requests in flight (0: none)");
  sub.add_option("--warmup", a->warmup, "First N requests are excluded from results");
  sub.add_option("--warmup-s", a->warmup_s,
                 "Requests (sessions) scheduled in the first S seconds are excluded from results: the load is "
                 "still building up")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--seed", a->seed, "Seed for arrivals, lengths and prompts")->capture_default_str();
  sub.add_option("--slo", a->slo, "e.g. \"ttft:p90<500ms,tpot:p90<40ms,e2e:p99<20s\"");
  sub.add_option("--attainment", a->attainment, "Also require this fraction of good requests (0..1)");
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
  sub.add_option("--trace", a->trace, "Trace file to replay (implies --workload trace)");
  sub.add_option("--trace-format", a->trace_format, "azure | mooncake")->capture_default_str();
  sub.add_option("--time-scale", a->time_scale, "Multiply trace timestamps by this (0.5 = twice as fast)")
      ->capture_default_str();
  sub.add_option("--prefix-groups", a->prefix_groups, "prefix workload: number of shared prefixes")
      ->capture_default_str();
  sub.add_option("--prefix-hit-rate", a->prefix_hit_rate, "prefix workload: target prefix-cache hit rate")
      ->capture_default_str();
  sub.add_option("--turns", a->turns, "multiturn: turns per session")->capture_default_str();
  sub.add_option("--think-time-s", a->think_time_s, "multiturn: pause after each answer")->capture_default_str();
  sub.add_option("--prompt-format", a->prompt_format, "ids (exact lengths) | text")->capture_default_str();
  sub.add_option("--vocab-size", a->vocab_size,
                 "Token ids are drawn below this, away from special ids (default: the vocab_size GET /v1/models "
                 "reports, else 151936, Qwen3's)")
      ->capture_default_str();
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
  return [a, cmp, rate, sim] {
    if (cmp->parsed()) return run_compare(*a);
    if (sim->parsed()) return run_sim_server(*a);
    return run_bench(*a, rate->count() > 0);
  };
}

}  // namespace

baton::cli::CommandSpec baton::cli::bench_command() {
  return {"bench", "Benchmark an OpenAI-compatible endpoint: latency, goodput, max sustainable QPS",
          &setup};
}

#include "planner/plan_validation.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <tuple>
#include <type_traits>
#include <variant>

#include <fmt/format.h>

#include "bench/slo.h"
#include "bench/workload_schema.h"
#include "common/dtype.h"
#include "model/presets.h"
#include "planner/planner.h"
#include "planner/sweep_replay.h"
#include "planner/transfer_fit.h"

namespace baton::planner {

namespace fs = std::filesystem;

namespace {

// The workload settings a sweep recorded (keys of the bench's schema; numbers
// written as JSON numbers), back into WorkloadSettings. Keys outside the
// schema (the search's: start_rate, precision, ...) are not workload options.
Result<bench::WorkloadSettings> settings_from_json(const Json& j, const std::string& where) {
  bench::WorkloadSettings s;
  if (!j.is_object()) return invalid_argument("{}: workload_settings is not an object", where);
  for (const bench::WorkloadOption& o : bench::workload_options()) {
    if (!j.contains(o.key)) continue;
    const Json& v = j[o.key];
    Status st = std::visit(
        [&](auto field) -> Status {
          using T = std::remove_reference_t<decltype(s.*field)>;
          if constexpr (std::is_same_v<T, std::string>) {
            if (v.is_string()) {
              s.*field = v.get<std::string>();
            } else if (v.is_number()) {  // "input_len: 1024" is recorded as a number
              const double d = v.get<double>();
              s.*field = d == std::floor(d) ? fmt::format("{}", static_cast<int64_t>(d)) : fmt::format("{}", d);
            } else {
              return invalid_argument("{}: workload setting '{}' is not text", where, o.key);
            }
          } else {
            if (!v.is_number()) return invalid_argument("{}: workload setting '{}' is not a number", where, o.key);
            const double d = v.get<double>();
            if (!std::isfinite(d) || d < o.min || d > o.max) {
              return invalid_argument("{}: workload setting '{}' = {} is out of range", where, o.key, d);
            }
            s.*field = static_cast<T>(d);
          }
          return Status::ok();
        },
        o.field);
    BATON_RETURN_IF_ERROR(st);
    s.given.insert(o.key);
  }
  return s;
}

std::string engine_arg(const Json& spec, const char* role, const std::string& name) {
  if (role != nullptr && spec.contains(role) && spec[role].contains("engine_args") &&
      spec[role]["engine_args"].contains(name)) {
    return spec[role]["engine_args"][name].get<std::string>();
  }
  if (spec.contains("engine_args") && spec["engine_args"].contains(name)) {
    return spec["engine_args"][name].get<std::string>();
  }
  return "";
}

Result<double> number_arg(const Json& spec, const char* role, const std::string& name, double fallback) {
  const std::string text = engine_arg(spec, role, name);
  if (text.empty()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(v) || v <= 0) {
    return invalid_argument("engine argument --{} = '{}' is not a positive number", name, text);
  }
  return v;
}

// A profile of one card, and the step-time fits of its models.
struct CardProfile {
  std::string path;
  Json doc;
  std::map<std::string, StepTimeModel> fits;
  std::map<std::string, FirstUseModel> first_uses;
  std::map<std::string, double> fit_rms;  // the fit's RMS relative error over whole steps: the band
};

Result<std::map<std::string, CardProfile>> load_profiles(const std::string& dir) {
  std::map<std::string, CardProfile> by_card;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return by_card;  // every cell then says which card lacks one
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    BATON_ASSIGN_OR_RETURN(Json doc, read_json_file(f.string()));
    const std::string card = doc.is_object() ? doc.value("device", "") : "";
    if (card.empty()) return invalid_argument("profile '{}' names no device", f.string());
    if (by_card.count(card) > 0) {
      return invalid_argument("two profiles of '{}': '{}' and '{}'; keep one per card", card, by_card[card].path,
                              f.string());
    }
    by_card[card] = CardProfile{f.string(), std::move(doc), {}};
  }
  return by_card;
}

// "NVIDIA H200" when every GPU of the cell is one; "" when none is recorded.
Result<std::string> card_of(const Json& sweep, const std::string& where) {
  std::string card;
  if (!sweep.contains("gpus") || !sweep["gpus"].is_array()) return card;
  for (const Json& g : sweep["gpus"]) {
    const std::string name = g.is_object() ? g.value("name", "") : "";
    if (card.empty()) card = name;
    if (name != card) return invalid_argument("{}: its GPUs are of two kinds ('{}', '{}')", where, card, name);
  }
  return card;
}

struct CellInputs {
  PlanInputs inputs;
  DeploymentSpec deployment;
};

// The deployment and workload a cell ran, for the simulator.
Result<CellInputs> cell_inputs(const ValidationOptions& o, const Json& sweep, const CardProfile& profile,
                               const StepTimeModel& model, const std::string& model_name) {
  const Json& spec = sweep["deployment"];
  CellInputs c;
  PlanInputs& in = c.inputs;
  BATON_ASSIGN_OR_RETURN(bench::WorkloadSettings settings, settings_from_json(sweep["workload_settings"], "result"));
  BATON_ASSIGN_OR_RETURN(in.workload, bench::to_workload_options(settings, bench::OptionNames::kKey));
  in.workload.vocab_size = sweep.value("vocab_size", int64_t{0});
  BATON_ASSIGN_OR_RETURN(ModelPreset preset, find_model_preset(model_name));
  if (in.workload.vocab_size <= 0) in.workload.vocab_size = preset.config.vocab_size;
  BATON_ASSIGN_OR_RETURN(in.slo, bench::parse_slo(sweep.value("slo", std::string()), settings.attainment));
  in.num_warmup = settings.warmup;
  in.warmup_s = settings.warmup_s;
  in.model = model;
  in.transfer = TransferModel{.latency_s = o.transfer_latency_s,
                              .bytes_per_s = o.transfer_gbps * 1e9,
                              .kv_bytes_per_token = kv_bytes_per_token(preset.config)};
  in.router_hop_s = o.router_hop_s;
  in.rate_precision = o.rate_precision;
  if (!o.transfer_results.empty() && spec.value("mode", std::string("agg")) == "pd") {
    BATON_ASSIGN_OR_RETURN(Json measured, read_json_file(o.transfer_results));
    const std::string transport = spec.value("kv_transport", std::string("cuda_ipc"));
    auto fit = fit_transfer(measured, transport);
    if (!fit.is_ok()) return Status(fit.status().code(), o.transfer_results + ": " + fit.status().message());
    in.transfer.latency_s = fit->latency_s;
    in.transfer.bytes_per_s = fit->bytes_per_s;
  }

  DeploymentSpec& d = c.deployment;
  d.name = spec.value("name", std::string("?"));
  d.router_hop_s = o.router_hop_s;
  BATON_ASSIGN_OR_RETURN(d.policy, parse_sim_policy(spec.value("router_policy", std::string("round_robin"))));
  double weight_bytes = 0;
  for (const Json& m : profile.doc["models"]) {
    if (m.value("model", "") == model_name) weight_bytes = m.value("weight_bytes", 0.0);
  }
  const double card_bytes = profile.doc.value("gpu_memory_bytes", o.gpu_memory_gib * (1 << 30));
  if (card_bytes <= 0) {
    return invalid_argument(
        "the KV capacity needs the card's memory: give --gpu-memory-gib (the profile '{}' has no "
        "gpu_memory_bytes)",
        profile.path);
  }
  auto role = [&](const char* name) -> Result<SimInstanceOptions> {
    SimInstanceOptions r;
    BATON_ASSIGN_OR_RETURN(double seqs, number_arg(spec, name, "max-num-seqs", 256));
    BATON_ASSIGN_OR_RETURN(double budget, number_arg(spec, name, "max-num-batched-tokens", 8192));
    BATON_ASSIGN_OR_RETURN(double block, number_arg(spec, name, "block-size", 16));
    BATON_ASSIGN_OR_RETURN(double util, number_arg(spec, name, "gpu-memory-utilization", 0.9));
    r.scheduler.max_num_seqs = static_cast<int>(seqs);
    r.scheduler.max_num_batched_tokens = static_cast<int>(budget);
    r.block_size = static_cast<int>(block);
    r.prefix_caching = engine_arg(spec, name, "no-enable-prefix-caching").empty();
    const double kv_bytes = card_bytes * std::min(util, 1.0) - weight_bytes;
    r.num_kv_blocks = static_cast<int>(kv_bytes / static_cast<double>(in.transfer.kv_bytes_per_token * r.block_size));
    if (r.num_kv_blocks < 1) return invalid_argument("the model's weights leave no memory for KV on the card");
    return r;
  };
  // The router's URL of each instance, from the sweep's supervisor events
  // ("... started agg-0 (pid 1255) on http://127.0.0.1:8100"): the
  // prefix-aware router hashes them.
  std::map<std::string, std::string> url_of;
  if (sweep.contains("supervisor_events") && sweep["supervisor_events"].is_array()) {
    for (const Json& e : sweep["supervisor_events"]) {
      if (!e.is_string()) continue;
      const std::string line = e.get<std::string>();
      const size_t started = line.find(" started ");
      const size_t on = line.find(" on ");
      if (started == std::string::npos || on == std::string::npos || on < started) continue;
      const std::string name = line.substr(started + 9, line.find(' ', started + 9) - started - 9);
      url_of.emplace(name, line.substr(on + 4));
    }
  }
  auto urls = [&](const char* role, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
      auto it = url_of.find(fmt::format("{}-{}", role, i));
      if (it == url_of.end()) return std::vector<std::string>{};
      out.push_back(it->second);
    }
    return out;
  };
  if (spec.value("mode", std::string("agg")) == "pd") {
    d.num_prefill = spec.contains("prefill") ? spec["prefill"].value("replicas", 0) : 0;
    d.num_decode = spec.contains("decode") ? spec["decode"].value("replicas", 0) : 0;
    BATON_ASSIGN_OR_RETURN(d.prefill, role("prefill"));
    BATON_ASSIGN_OR_RETURN(d.decode, role("decode"));
    d.agg = d.prefill;
  } else {
    d.num_agg = spec.value("replicas", 0);
    BATON_ASSIGN_OR_RETURN(d.agg, role(nullptr));
    d.prefill = d.decode = d.agg;
  }
  d.front_urls = d.num_agg > 0 ? urls("agg", d.num_agg) : urls("prefill", d.num_prefill);
  d.decode_urls = urls("decode", d.num_decode);
  BATON_RETURN_IF_ERROR(d.validate());
  in.num_gpus = d.num_agg + d.num_prefill + d.num_decode;
  return c;
}

// The objects validation walks into by name; every other field is read by
// value (a wrong type throws, caught in validate_cell).
bool is_sweep_result(const Json& doc) {
  auto object_at = [](const Json& j, const char* key) { return j.contains(key) && j[key].is_object(); };
  return doc.is_object() && object_at(doc, "config") && object_at(doc["config"], "sweep") && object_at(doc, "search") &&
         object_at(doc["config"]["sweep"], "deployment") && doc["config"]["sweep"].contains("workload_settings");
}

// One result file, read.
struct CellDoc {
  fs::path file;
  Json doc;
  std::string deployment;  // its folder
  std::string finished;    // config.sweep.finished_utc
  std::string started;     // the first supervisor event: the processes it ran on
};

Result<CellDoc> read_cell(const fs::path& file) {
  BATON_ASSIGN_OR_RETURN(Json doc, read_json_file(file.string()));
  if (!is_sweep_result(doc)) {
    return invalid_argument("'{}' is not a sweep result (no config.sweep.deployment, workload_settings or search)",
                            file.string());
  }
  CellDoc c{file, std::move(doc), file.parent_path().filename().string(), "", ""};
  const Json& sweep = c.doc["config"]["sweep"];
  if (sweep.contains("finished_utc") && sweep["finished_utc"].is_string()) c.finished = sweep["finished_utc"];
  if (sweep.contains("supervisor_events") && sweep["supervisor_events"].is_array() &&
      !sweep["supervisor_events"].empty() && sweep["supervisor_events"][0].is_string()) {
    c.started = sweep["supervisor_events"][0];
  }
  return c;
}

Result<ValidationCell> validate_sweep_result(const ValidationOptions& o, const fs::path& file, const Json& doc,
                                             std::map<std::string, CardProfile>& profiles, SweptProcesses& processes);

// One cell: its measured outcome, and the prediction (or why there is none).
// `processes`: the deployment's, as the cells before it on the same
// processes left them.
Result<ValidationCell> validate_cell(const ValidationOptions& o, const CellDoc& c,
                                     std::map<std::string, CardProfile>& profiles, SweptProcesses& processes) {
  try {
    return validate_sweep_result(o, c.file, c.doc, profiles, processes);
  } catch (const Json::exception& e) {  // a field of the wrong type: the file's fault, named
    return invalid_argument("'{}' is not a sweep result baton can read: {}", c.file.string(), e.what());
  }
}

Result<ValidationCell> validate_sweep_result(const ValidationOptions& o, const fs::path& file, const Json& doc,
                                             std::map<std::string, CardProfile>& profiles, SweptProcesses& processes) {
  const std::string where = file.string();
  const Json& sweep = doc["config"]["sweep"];
  const Json& search = doc["search"];
  ValidationCell cell;
  cell.deployment = file.parent_path().filename().string();
  cell.workload = sweep.value("workload", file.stem().string());
  BATON_ASSIGN_OR_RETURN(cell.card, card_of(sweep, where));
  cell.measured_rps = search.value("max_sustainable_rps", 0.0);
  cell.measured_failed_rps = search.value("min_failed_rps", 0.0);
  cell.measured_broke_first = search.value("broke_first", "");
  auto it = profiles.find(cell.card);
  if (it == profiles.end()) {
    cell.skipped = fmt::format("no profile of '{}'", cell.card.empty() ? "its card (none recorded)" : cell.card);
    return cell;
  }
  CardProfile& profile = it->second;
  std::string model_name = fs::path(sweep["deployment"].value("model", std::string())).filename().string();
  auto fit = profile.fits.find(model_name);
  if (fit == profile.fits.end()) {
    auto samples = samples_from_profile(profile.doc, model_name);
    if (!samples.is_ok()) {
      cell.skipped = fmt::format("profile '{}': {}", profile.path, samples.status().message());
      return cell;
    }
    auto first_use = first_use_from_profile(profile.doc, model_name);
    if (!first_use.is_ok()) {
      cell.skipped = fmt::format("profile '{}': {}", profile.path, first_use.status().message());
      return cell;
    }
    FitReport report;
    BATON_ASSIGN_OR_RETURN(StepTimeModel model, StepTimeModel::fit(*samples, &report));
    fit = profile.fits.emplace(model_name, model).first;
    profile.first_uses[model_name] = std::move(*first_use);
    profile.fit_rms[model_name] = report.rms_rel_error;
  }
  const double rms = profile.fit_rms[model_name];
  auto inputs = cell_inputs(o, sweep, profile, fit->second, model_name);
  if (!inputs.is_ok()) return Status(inputs.status().code(), where + ": " + inputs.status().message());
  inputs->inputs.max_rate = o.max_rate;
  BATON_ASSIGN_OR_RETURN(
      cell.predicted_warm_rps,
      max_sustainable_rate(inputs->inputs, inputs->deployment, inputs->inputs.model, &cell.predicted_broke_first));
  cell.predicted_rps = cell.predicted_warm_rps;
  const FirstUseModel& first_use = profile.first_uses[model_name];
  // The band: every step 1 + rms (low) and 1 - rms (high) times as long.
  const StepTimeModel slower = inputs->inputs.model.scaled(1 + rms);
  const StepTimeModel faster = inputs->inputs.model.scaled(std::max(0.0, 1 - rms));
  // A result that records no search to run again is judged in steady state.
  cell.as_swept = o.as_swept && sweep.contains("search") && sweep["search"].is_object();
  if (cell.as_swept) {
    PlanInputs in = inputs->inputs;
    in.first_use = &first_use;
    // The band's searches start from the same processes and leave them be.
    std::vector<EngineWarmth> low_warmth = processes.searched, high_warmth = processes.searched;
    double before = 0;
    for (const EngineWarmth& w : processes.searched) before += w.seconds;
    auto searched = search_as_swept(doc, in, inputs->deployment, &processes.searched);
    if (!searched.is_ok()) return Status(searched.status().code(), where + ": " + searched.status().message());
    cell.predicted_rps = searched->max_passed_rate;
    cell.predicted_broke_first = searched->broke_first;
    cell.searched = std::move(searched->trials);
    for (const EngineWarmth& w : processes.searched) cell.first_use_s += w.seconds;
    cell.first_use_s -= before;
    in.model = slower;
    BATON_ASSIGN_OR_RETURN(bench::SearchResult low, search_as_swept(doc, in, inputs->deployment, &low_warmth));
    in.model = faster;
    BATON_ASSIGN_OR_RETURN(bench::SearchResult high, search_as_swept(doc, in, inputs->deployment, &high_warmth));
    cell.predicted_low_rps = low.max_passed_rate;
    cell.predicted_high_rps = high.max_passed_rate;
  } else {
    BATON_ASSIGN_OR_RETURN(cell.predicted_low_rps, max_sustainable_rate(inputs->inputs, inputs->deployment, slower));
    BATON_ASSIGN_OR_RETURN(cell.predicted_high_rps, max_sustainable_rate(inputs->inputs, inputs->deployment, faster));
  }
  cell.measured_in_band = cell.measured_rps >= std::min(cell.predicted_low_rps, cell.predicted_high_rps) &&
                          cell.measured_rps <= std::max(cell.predicted_low_rps, cell.predicted_high_rps);
  if (o.compare_trials || !o.records_dir.empty()) {
    std::string records;
    if (!o.records_dir.empty()) {
      const fs::path dir = fs::path(o.records_dir) / cell.deployment;
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) return unavailable("cannot create '{}': {}", dir.string(), ec.message());
      records = (dir / (file.stem().string() + ".sim.requests.jsonl")).string();
    }
    PlanInputs in = inputs->inputs;
    if (cell.as_swept) {
      in.first_use = &first_use;
      in.warmth = &processes.replayed;
    }
    auto trials = replay_trials(doc, in, inputs->deployment, records);
    if (!trials.is_ok()) return Status(trials.status().code(), where + ": " + trials.status().message());
    cell.trials = std::move(*trials);
  }
  if (cell.measured_rps > 0) cell.rel_error = (cell.predicted_rps - cell.measured_rps) / cell.measured_rps;
  cell.in_measured_bracket = cell.predicted_rps >= cell.measured_rps &&
                             (cell.measured_failed_rps <= 0 || cell.predicted_rps < cell.measured_failed_rps);
  return cell;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::vector<ValidationWorkload> judge_recommendations(const std::vector<ValidationCell>& cells) {
  std::map<std::string, std::vector<const ValidationCell*>> by_workload;
  for (const ValidationCell& c : cells) by_workload[c.workload].push_back(&c);
  std::vector<ValidationWorkload> out;
  for (const auto& [name, group] : by_workload) {
    if (std::any_of(group.begin(), group.end(), [](const ValidationCell* c) { return !c->predicted(); })) continue;
    ValidationWorkload w;
    w.workload = name;
    const ValidationCell* measured_best = group[0];
    const ValidationCell* predicted_best = group[0];
    for (const ValidationCell* c : group) {
      if (c->measured_rps > measured_best->measured_rps) measured_best = c;
      if (c->predicted_rps > predicted_best->predicted_rps) predicted_best = c;
    }
    w.measured_best = measured_best->deployment;
    w.measured_best_rps = measured_best->measured_rps;
    w.predicted_best = predicted_best->deployment;
    w.predicted_best_measured_rps = predicted_best->measured_rps;
    w.within_5pct = predicted_best->measured_rps >= 0.95 * measured_best->measured_rps;
    out.push_back(w);
  }
  return out;
}

}  // namespace

int64_t kv_bytes_per_token(const ModelConfig& c) {
  const int64_t per_layer = c.is_mla() ? c.mla.latent_dim() : 2LL * c.kv_size();
  return per_layer * c.num_layers * static_cast<int64_t>(dtype_size(c.torch_dtype));
}

Json ValidationCell::to_json() const {
  Json j{{"deployment", deployment},
         {"workload", workload},
         {"card", card},
         {"measured_rps", measured_rps},
         {"measured_failed_rps", measured_failed_rps},
         {"measured_broke_first", measured_broke_first}};
  if (predicted()) {
    j["predicted_rps"] = predicted_rps;
    j["predicted_warm_rps"] = predicted_warm_rps;
    j["predicted_as"] = as_swept ? "swept" : "steady_state";
    j["predicted_low_rps"] = predicted_low_rps;
    j["predicted_high_rps"] = predicted_high_rps;
    j["measured_in_band"] = measured_in_band;
    if (!searched.empty()) {
      j["searched"] = Json::array();
      for (const bench::TrialOutcome& t : searched) {
        j["searched"].push_back(Json{{"rate", t.rate}, {"sustainable", t.sustainable}, {"worst_ratio", t.worst_ratio}});
      }
      j["first_use_s"] = first_use_s;
    }
    j["predicted_broke_first"] = predicted_broke_first;
    j["rel_error"] = rel_error;
    j["in_measured_bracket"] = in_measured_bracket;
  } else {
    j["skipped"] = skipped;
  }
  if (!trials.empty()) {
    j["trials"] = Json::array();
    for (const TrialComparison& t : trials) j["trials"].push_back(t.to_json());
  }
  return j;
}

Json ValidationWorkload::to_json() const {
  return Json{{"workload", workload},
              {"measured_best", measured_best},
              {"measured_best_rps", measured_best_rps},
              {"predicted_best", predicted_best},
              {"predicted_best_measured_rps", predicted_best_measured_rps},
              {"within_5pct", within_5pct}};
}

Json Validation::to_json() const {
  Json cells_json = Json::array(), workloads_json = Json::array();
  for (const ValidationCell& c : cells) cells_json.push_back(c.to_json());
  for (const ValidationWorkload& w : workloads) workloads_json.push_back(w.to_json());
  return Json{{"cells", cells_json},
              {"workloads", workloads_json},
              {"num_cells", cells.size()},
              {"num_predicted", num_predicted},
              {"num_in_measured_bracket", num_in_bracket},
              {"num_in_band", num_in_band},
              {"num_trials", num_trials},
              {"num_trial_verdicts_agree", num_trial_verdicts_agree},
              {"median_abs_rel_error", median_abs_rel_error},
              {"max_abs_rel_error", max_abs_rel_error}};
}

Result<Validation> validate_results(const ValidationOptions& o) {
  const fs::path results = fs::path(o.results_dir) / "results";
  std::error_code ec;
  if (!fs::is_directory(results, ec)) {
    return not_found("'{}' has no results/ folder: give the --out folder of a `baton sweep`", o.results_dir);
  }
  BATON_ASSIGN_OR_RETURN(
      auto profiles,
      load_profiles(o.profiles_dir.empty() ? (fs::path(o.results_dir) / "profiles").string() : o.profiles_dir));
  std::vector<fs::path> files;
  for (const auto& dir : fs::directory_iterator(results, ec)) {
    if (!dir.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(dir.path(), ec)) {
      if (f.path().extension() == ".json") files.push_back(f.path());
    }
  }
  if (files.empty()) return not_found("'{}' holds no sweep results (results/DEPLOYMENT/WORKLOAD.json)", o.results_dir);
  std::vector<CellDoc> docs;
  for (const fs::path& f : files) {
    BATON_ASSIGN_OR_RETURN(CellDoc c, read_cell(f));
    docs.push_back(std::move(c));
  }
  // In the order the sweep ran them, per deployment: cells on the same
  // processes carry what those processes met.
  std::sort(docs.begin(), docs.end(), [](const CellDoc& a, const CellDoc& b) {
    return std::tie(a.deployment, a.finished, a.file) < std::tie(b.deployment, b.finished, b.file);
  });
  Validation v;
  std::map<std::string, SweptProcesses> processes;
  for (const CellDoc& c : docs) {
    SweptProcesses& p = processes[c.deployment];
    if (c.started.empty() || c.started != p.started) p = SweptProcesses{c.started, {}, {}};
    BATON_ASSIGN_OR_RETURN(ValidationCell cell, validate_cell(o, c, profiles, p));
    v.cells.push_back(std::move(cell));
  }
  std::sort(v.cells.begin(), v.cells.end(), [](const ValidationCell& a, const ValidationCell& b) {
    return std::tie(a.workload, a.deployment) < std::tie(b.workload, b.deployment);
  });
  std::vector<double> errors;
  for (const ValidationCell& c : v.cells) {
    if (c.predicted()) errors.push_back(std::abs(c.rel_error));
    if (c.predicted() && c.in_measured_bracket) ++v.num_in_bracket;
    if (c.predicted() && c.measured_in_band) ++v.num_in_band;
    for (const TrialComparison& t : c.trials) {
      ++v.num_trials;
      if (t.measured.sustainable == t.simulated.sustainable) ++v.num_trial_verdicts_agree;
    }
  }
  v.num_predicted = errors.size();
  v.median_abs_rel_error = median(errors);
  v.max_abs_rel_error = errors.empty() ? 0 : *std::max_element(errors.begin(), errors.end());
  v.workloads = judge_recommendations(v.cells);
  return v;
}

}  // namespace baton::planner

#include "deploy/experiment.h"

#include <cmath>

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>
#include <type_traits>
#include <variant>

#include "bench/workload_schema.h"
#include "common/files.h"
#include "common/json.h"
#include "deploy/yaml_limits.h"

namespace baton::deploy {

namespace fs = std::filesystem;

Status check_result_name(const std::string& name, const std::string& what) {
  if (name.empty() || name == "." || name == "..") return invalid_argument("{} needs a name", what);
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return invalid_argument("{} name '{}' may use only letters, digits, '.', '_' and '-'", what, name);
  }
  return Status::ok();
}

namespace {

Status check_keys(const YAML::Node& node, const std::string& where, const std::set<std::string>& known) {
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    if (!known.count(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return invalid_argument("unknown field '{}' in {} (known: {})", key, where, list);
    }
  }
  return Status::ok();
}

std::string resolve_path(const std::string& path, const std::string& base_dir) {
  if (path.empty() || fs::path(path).is_absolute() || path_exists(path) || base_dir.empty()) return path;
  fs::path alt = fs::path(base_dir) / path;
  return path_exists(alt) ? alt.string() : path;
}

std::vector<std::string> string_list(const YAML::Node& node, const std::string& where) {
  if (!node) return {};
  if (node.IsScalar()) return {node.as<std::string>()};
  if (!node.IsSequence()) throw YAML::Exception(node.Mark(), where + " must be a name or a list of names");
  return node.as<std::vector<std::string>>();
}

const std::set<std::string> kSearchKeys = {"start_rate", "precision",  "num_requests", "warmup",   "warmup_s",
                                           "seed",       "max_trials", "max_rate",     "min_rate", "close_margin"};

// The YAML binding of the workload schema (bench/workload_schema.h): reads each option present in `node`.
// `own`: the workload's own mapping (its keys count as given; those of the defaults do not).
void read_settings(const YAML::Node& node, bench::WorkloadSettings* s, bool own) {
  for (const auto& o : bench::workload_options()) {
    const YAML::Node value = node[o.key];
    if (!value) continue;
    std::visit([&](auto field) { s->*field = value.as<std::remove_cvref_t<decltype(s->*field)>>(); }, o.field);
    if (own) s->given.insert(o.key);
  }
}

// Reads the search fields present in `node` over `w` (experiment defaults first, then the workload's own).
// `own`: the workload's own fields (an explicit start rate there overrides a trace's own rate).
void read_search(const YAML::Node& node, ExperimentWorkload* w, bool own) {
  if (node["start_rate"]) {
    w->search.start_rate = node["start_rate"].as<double>();
    w->start_rate_given = own;
  }
  if (node["precision"]) w->search.precision = node["precision"].as<double>();
  if (node["max_trials"]) w->search.max_trials = node["max_trials"].as<int>();
  if (node["max_rate"]) w->search.max_rate = node["max_rate"].as<double>();
  if (node["min_rate"]) w->search.min_rate = node["min_rate"].as<double>();
  if (node["close_margin"]) w->search.close_margin = node["close_margin"].as<double>();
}

Result<std::map<std::string, double>> read_start_rates(const YAML::Node& rates, const std::string& where) {
  std::map<std::string, double> out;
  if (!rates) return out;
  if (!rates.IsMap()) return invalid_argument("{}: start_rates must map deployment names to rates", where);
  for (const auto& kv : rates) {
    const std::string dn = kv.first.as<std::string>();
    const double rate = kv.second.as<double>();
    if (!(rate > 0) || !std::isfinite(rate)) {
      return invalid_argument("{}: start_rates '{}' must be a rate > 0 (got {})", where, dn, rate);
    }
    out[dn] = rate;
  }
  return out;
}

// The workload's options from its settings; checked with placeholders for what the search and the model set.
Status apply_settings(const bench::WorkloadSettings& settings, const std::string& where, ExperimentWorkload* w) {
  auto options = bench::to_workload_options(settings, bench::OptionNames::kKey);
  if (!options.is_ok()) return options.status().with_context(where);
  w->options = std::move(*options);
  w->options.rate_overrides_trace = w->options.kind == "trace";
  w->num_warmup = settings.warmup;
  w->warmup_s = settings.warmup_s;
  w->max_concurrency = settings.max_concurrency;
  if (!settings.given.count("slo")) {
    return invalid_argument("{} needs an slo (e.g. \"ttft:p90<2s,tpot:p90<50ms\")", where);
  }
  w->slo_text = settings.slo;
  auto slo = bench::settings_slo(settings, bench::OptionNames::kKey);
  if (!slo.is_ok()) return slo.status().with_context(where);
  w->slo = *slo;
  if (w->slo.empty()) return invalid_argument("{}: the slo names no target", where);
  // The arrival rate is the search's; validate everything else with a placeholder.
  bench::WorkloadOptions check = w->options;
  check.arrival.rate = 1.0;
  if (check.vocab_size == 0) check.vocab_size = 151936;
  Status st = bench::validate(check);
  if (!st.is_ok()) return st.with_context(where);
  const auto& o = w->options;
  if (o.duration_s > 0 && o.num_requests == 0 && w->warmup_s >= o.duration_s) {
    return invalid_argument("{}: warmup_s {} leaves nothing of the {} s window to measure", where, w->warmup_s,
                            o.duration_s);
  }
  return Status::ok();
}

Result<ExperimentWorkload> read_workload(const YAML::Node& node, const YAML::Node& search_defaults,
                                         const YAML::Node& load_defaults, const std::string& base_dir) {
  if (!node.IsMap()) return invalid_argument("each workload must be a mapping");
  std::set<std::string> known = {"name", "deployments", "start_rates"};
  for (const auto& o : bench::workload_options()) known.insert(o.key);
  known.insert(kSearchKeys.begin(), kSearchKeys.end());
  ExperimentWorkload w;
  w.name = node["name"] ? node["name"].as<std::string>() : "";
  BATON_RETURN_IF_ERROR(check_result_name(w.name, "a workload"));
  const std::string where = "workload '" + w.name + "'";
  BATON_RETURN_IF_ERROR(check_keys(node, where, known));
  bench::WorkloadSettings settings;
  if (search_defaults) {
    read_settings(search_defaults, &settings, false);
    read_search(search_defaults, &w, false);
  }
  if (load_defaults) read_settings(load_defaults, &settings, false);
  read_settings(node, &settings, true);
  read_search(node, &w, true);
  settings.trace = resolve_path(settings.trace, base_dir);
  BATON_RETURN_IF_ERROR(apply_settings(settings, where, &w));
  w.deployments = string_list(node["deployments"], where + " deployments");
  BATON_ASSIGN_OR_RETURN(w.start_rates, read_start_rates(node["start_rates"], where));
  if (!(w.search.start_rate > 0)) w.search.start_rate = 1.0;
  w.search.min_rate = std::min(w.search.min_rate, w.search.start_rate);
  w.search.max_rate = std::max(w.search.max_rate, w.search.start_rate);
  Status st = bench::validate(w.search);
  if (!st.is_ok()) return st.with_context(where);
  return w;
}

Json yaml_to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    Json j = Json::object();
    for (const auto& kv : node) j[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return j;
  }
  if (node.IsSequence()) {
    Json j = Json::array();
    for (const auto& v : node) j.push_back(yaml_to_json(v));
    return j;
  }
  if (node.IsScalar()) {
    const std::string s = node.as<std::string>();
    if (node.Tag() != "!") {  // unquoted: keep numbers and booleans typed
      if (s == "true" || s == "false") return s == "true";
      try {
        size_t used = 0;
        double d = std::stod(s, &used);
        if (used == s.size()) return d;
      } catch (const std::exception&) {
      }
    }
    return s;
  }
  return nullptr;
}

Result<ExperimentDeployment> read_deployment(const YAML::Node& node, const std::string& base_dir) {
  ExperimentDeployment d;
  std::string rename;
  if (node.IsScalar()) {
    d.source = resolve_path(node.as<std::string>(), base_dir);
  } else if (node.IsMap()) {
    BATON_RETURN_IF_ERROR(check_keys(node, "a deployment entry", {"path", "name", "spec", "workloads"}));
    if (node["path"] && node["spec"]) return invalid_argument("a deployment entry takes 'path' or 'spec', not both");
    if (!node["path"] && !node["spec"]) return invalid_argument("a deployment entry needs 'path' or 'spec'");
    if (node["path"]) d.source = resolve_path(node["path"].as<std::string>(), base_dir);
    if (node["name"]) rename = node["name"].as<std::string>();
    d.workloads = string_list(node["workloads"], "a deployment's workloads");
    if (node["spec"]) {
      YAML::Node spec = YAML::Clone(node["spec"]);
      if (!spec.IsMap()) return invalid_argument("a deployment's 'spec' must be a mapping");
      if (!spec["name"] && !rename.empty()) spec["name"] = rename;
      auto parsed = DeploySpec::parse_yaml(YAML::Dump(spec));
      if (!parsed.is_ok()) return parsed.status().with_context("inline deployment '" + rename + "'");
      d.spec = *parsed;
      d.source = "inline";
    }
  } else {
    return invalid_argument("each deployment must be a spec path or a mapping");
  }
  if (d.source != "inline") {
    BATON_ASSIGN_OR_RETURN(d.spec, DeploySpec::load(d.source));
  }
  if (!rename.empty()) d.spec.name = rename;
  d.name = d.spec.name;
  BATON_RETURN_IF_ERROR(check_result_name(d.name, "a deployment"));
  return d;
}

}  // namespace

Result<Experiment> Experiment::parse_yaml(const std::string& text, const std::string& base_dir) {
  Experiment e;
  e.source_text = text;
  try {
    YAML::Node root = YAML::Load(text);
    BATON_RETURN_IF_ERROR(check_yaml_limits(root, "the experiment"));
    if (!root.IsMap()) return invalid_argument("an experiment must be a YAML mapping");
    BATON_RETURN_IF_ERROR(check_keys(
        root, "the experiment", {"name", "baseline", "deployments", "workloads", "search", "load", "comparisons"}));
    if (root["name"]) e.name = root["name"].as<std::string>();
    BATON_RETURN_IF_ERROR(check_result_name(e.name, "the experiment"));
    const YAML::Node search = root["search"];
    if (search) {
      if (!search.IsMap()) return invalid_argument("'search' must be a mapping");
      BATON_RETURN_IF_ERROR(check_keys(search, "search", kSearchKeys));
    }
    const YAML::Node load = root["load"];
    if (load) {
      if (!load.IsMap()) return invalid_argument("'load' must be a mapping");
      BATON_RETURN_IF_ERROR(check_keys(load, "load", {"threads", "timeout_s", "max_concurrency"}));
      if (load["threads"]) e.num_threads = load["threads"].as<int>();
      if (load["timeout_s"]) e.request_timeout_s = load["timeout_s"].as<double>();
      if (e.num_threads < 1 || e.num_threads > 64) return invalid_argument("load.threads must be in 1..64");
      if (!(e.request_timeout_s > 0)) return invalid_argument("load.timeout_s must be > 0");
    }
    const YAML::Node deps = root["deployments"];
    if (!deps || !deps.IsSequence() || deps.size() == 0) {
      return invalid_argument("the experiment needs a non-empty list 'deployments'");
    }
    for (const auto& node : deps) {
      BATON_ASSIGN_OR_RETURN(auto d, read_deployment(node, base_dir));
      if (e.find_deployment(d.name)) return invalid_argument("two deployments are named '{}'", d.name);
      e.deployments.push_back(std::move(d));
    }
    const YAML::Node works = root["workloads"];
    if (!works || !works.IsSequence() || works.size() == 0) {
      return invalid_argument("the experiment needs a non-empty list 'workloads'");
    }
    std::set<std::string> names;
    for (const auto& node : works) {
      BATON_ASSIGN_OR_RETURN(auto w, read_workload(node, search, load, base_dir));
      w.describe = yaml_to_json(node);
      if (!names.insert(w.name).second) return invalid_argument("two workloads are named '{}'", w.name);
      for (const auto& dn : w.deployments) {
        if (!e.find_deployment(dn)) {
          return invalid_argument("workload '{}' names deployment '{}', which the experiment lacks", w.name, dn);
        }
      }
      for (const auto& [dn, rate] : w.start_rates) {
        if (!e.find_deployment(dn)) {
          return invalid_argument("workload '{}': start_rates names deployment '{}', which the experiment lacks",
                                  w.name, dn);
        }
      }
      e.workloads.push_back(std::move(w));
    }
    for (const auto& d : e.deployments) {
      for (const auto& wn : d.workloads) {
        if (!names.count(wn)) {
          return invalid_argument("deployment '{}' names workload '{}', which the experiment lacks", d.name, wn);
        }
      }
    }
    e.baseline = root["baseline"] ? root["baseline"].as<std::string>() : e.deployments.front().name;
    if (!e.find_deployment(e.baseline)) {
      return invalid_argument("baseline '{}' is not one of the deployments", e.baseline);
    }
    if (const YAML::Node cmp = root["comparisons"]) {
      if (!cmp.IsSequence()) return invalid_argument("'comparisons' must be a list");
      for (const auto& c : cmp) {
        if (!c.IsMap()) return invalid_argument("each comparison must be a mapping");
        BATON_RETURN_IF_ERROR(check_keys(c, "a comparison", {"name", "deployment", "against"}));
        ExperimentComparison x;
        x.deployment = c["deployment"] ? c["deployment"].as<std::string>() : "";
        x.against = c["against"] ? c["against"].as<std::string>() : "";
        x.name = c["name"] ? c["name"].as<std::string>() : x.deployment + "-vs-" + x.against;
        for (const auto& n : {x.deployment, x.against}) {
          if (!e.find_deployment(n)) return invalid_argument("comparison '{}': no deployment '{}'", x.name, n);
        }
        e.comparisons.push_back(std::move(x));
      }
    }
  } catch (const YAML::Exception& ex) {
    return invalid_argument("bad experiment: {}", ex.what());
  }
  return e;
}

Result<Experiment> Experiment::load(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(std::string text, read_file(path));
  auto e = parse_yaml(text, fs::path(path).parent_path().string());
  if (!e.is_ok()) return e.status().with_context(path);
  return e;
}

Result<bench::SearchOptions> effective_search(const ExperimentWorkload& w, const std::string& deployment) {
  bench::SearchOptions search = w.search;
  if (auto it = w.start_rates.find(deployment); it != w.start_rates.end()) {
    search.start_rate = it->second;
    search.min_rate = std::min(search.min_rate, search.start_rate);
    search.max_rate = std::max(search.max_rate, search.start_rate);
    return search;
  }
  if (w.options.kind != "trace" || w.start_rate_given) return search;
  bench::WorkloadOptions probe = w.options;
  probe.rate_overrides_trace = false;
  probe.arrival.rate = 1.0;
  if (probe.vocab_size <= 0) probe.vocab_size = 151936;
  BATON_ASSIGN_OR_RETURN(auto trace, bench::make_workload(probe));
  if (trace.natural_rate > 0) search.start_rate = trace.natural_rate / trace.time_scale;
  search.min_rate = std::min(search.min_rate, search.start_rate);
  search.max_rate = std::max(search.max_rate, search.start_rate);
  return search;
}

bool Experiment::runs(const ExperimentDeployment& d, const ExperimentWorkload& w) const {
  auto allows = [](const std::vector<std::string>& list, const std::string& name) {
    if (list.empty()) return true;
    for (const auto& n : list) {
      if (n == name) return true;
    }
    return false;
  };
  return allows(d.workloads, w.name) && allows(w.deployments, d.name);
}

const ExperimentDeployment* Experiment::find_deployment(const std::string& name) const {
  for (const auto& d : deployments) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

}  // namespace baton::deploy

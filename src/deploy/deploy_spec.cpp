#include "deploy/deploy_spec.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <utility>

#include "common/json.h"
#include "deploy/yaml_limits.h"

namespace baton::deploy {

const char* role_name(InstanceRole role) {
  switch (role) {
    case InstanceRole::kAgg: return "agg";
    case InstanceRole::kPrefill: return "prefill";
    case InstanceRole::kDecode: return "decode";
  }
  return "?";
}

namespace {

Status read_args(const YAML::Node& node, const char* where, std::map<std::string, std::string>* out) {
  if (!node) return Status::ok();
  if (!node.IsMap()) return invalid_argument("'{}' must be a mapping of flag: value", where);
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    while (!key.empty() && key.front() == '-') key.erase(key.begin());
    if (key.empty()) return invalid_argument("'{}' has an empty flag name", where);
    if (kv.second.IsNull()) {
      (*out)[key] = "";
    } else if (kv.second.IsScalar()) {
      std::string v = kv.second.as<std::string>();
      (*out)[key] = (v == "true") ? "" : v;
      if (v == "false") out->erase(key);
    } else {
      return invalid_argument("'{}.{}' must be a scalar", where, key);
    }
  }
  return Status::ok();
}

// A positive integer, or nullopt.
std::optional<int> parse_positive(const std::string& text) {
  int value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < 1) return std::nullopt;
  return value;
}

Status check_kv_cache_dtype(const std::string& value, const char* where) {
  if (value == "auto" || value == "fp8" || value == "fp8_e4m3") return Status::ok();
  return invalid_argument("'{}' must be auto, fp8 or fp8_e4m3, got '{}'", where, value);
}

Status read_group(const YAML::Node& node, const char* where, RoleGroup* group) {
  if (!node) return Status::ok();
  if (node.IsScalar()) {
    group->replicas = node.as<int>();
    return Status::ok();
  }
  if (!node.IsMap()) return invalid_argument("'{}' must be a mapping or a replica count", where);
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    if (key != "replicas" && key != "engine_args" && key != "tensor_parallel_size" && key != "enable_expert_parallel" &&
        key != "kv_cache_dtype") {
      return invalid_argument(
          "unknown field '{}.{}' (expected replicas, tensor_parallel_size, enable_expert_parallel, kv_cache_dtype, "
          "engine_args)",
          where, key);
    }
  }
  if (node["enable_expert_parallel"]) group->enable_expert_parallel = node["enable_expert_parallel"].as<bool>();
  if (node["replicas"]) group->replicas = node["replicas"].as<int>();
  if (node["tensor_parallel_size"]) {
    group->tensor_parallel_size = node["tensor_parallel_size"].as<int>();
    if (group->tensor_parallel_size < 1) {
      return invalid_argument("'{}.tensor_parallel_size' must be at least 1, got {}", where,
                              group->tensor_parallel_size);
    }
  }
  if (node["kv_cache_dtype"]) {
    group->kv_cache_dtype = node["kv_cache_dtype"].as<std::string>();
    BATON_RETURN_IF_ERROR(
        check_kv_cache_dtype(group->kv_cache_dtype, (std::string(where) + ".kv_cache_dtype").c_str()));
  }
  return read_args(node["engine_args"], (std::string(where) + ".engine_args").c_str(), &group->engine_args);
}

// Bounds that keep plan_instances' loops and sums small and every port it
// assigns within 1..65535: a spec of 60 bytes asked for 859,109 replicas (the
// deploy_spec fuzzer), and a tensor_parallel_size near 2^31 would list that
// many GPUs for one instance.
constexpr int kMaxReplicas = 4096;        // instances of one role group
constexpr int kMaxTensorParallel = 1024;  // GPUs one instance spans

Status check_sizes(const DeploySpec& spec) {
  const std::pair<const char*, const RoleGroup*> groups[] = {
      {"replicas", &spec.agg}, {"prefill.replicas", &spec.prefill}, {"decode.replicas", &spec.decode}};
  int64_t instances = 0;
  for (const auto& [field, group] : groups) {
    if (group->replicas > kMaxReplicas)
      return invalid_argument("{} is {}, more than the {} instances a role group may have", field, group->replicas,
                              kMaxReplicas);
    if (group->tensor_parallel_size > kMaxTensorParallel)
      return invalid_argument("tensor_parallel_size {} (for {}) is more than {}", group->tensor_parallel_size, field,
                              kMaxTensorParallel);
    instances += std::max(0, group->replicas);
  }
  if (spec.tensor_parallel_size > kMaxTensorParallel)
    return invalid_argument("tensor_parallel_size {} is more than {}", spec.tensor_parallel_size, kMaxTensorParallel);
  auto check_ports = [&](const char* field, int base) -> Status {
    const int64_t last = static_cast<int64_t>(base) + instances - 1;
    if (base < 1 || last > 65535)
      return invalid_argument("{} {} gives the {} instances ports {}..{}, outside 1..65535", field, base, instances,
                              base, last);
    return Status::ok();
  };
  BATON_RETURN_IF_ERROR(check_ports("base_port", spec.base_port));
  if (spec.mode != "agg") BATON_RETURN_IF_ERROR(check_ports("base_kv_port", spec.base_kv_port));
  return Status::ok();
}

Status read_router(const YAML::Node& router, DeploySpec* spec) {
  if (!router.IsMap()) return invalid_argument("'router' must be a mapping");
  for (const auto& kv : router) {
    const std::string key = kv.first.as<std::string>();
    if (key != "port" && key != "policy" && key != "disagg" && key != "tokenizer") {
      return invalid_argument("unknown field 'router.{}' (expected port, policy, disagg, tokenizer)", key);
    }
    if (!kv.second.IsScalar()) return invalid_argument("'router.{}' must be a scalar", key);
  }
  if (router["port"]) spec->router_port = router["port"].as<int>();
  if (router["policy"]) spec->router_policy = router["policy"].as<std::string>();
  if (router["disagg"]) spec->router_disagg = router["disagg"].as<std::string>();
  if (router["tokenizer"]) spec->router_tokenizer = router["tokenizer"].as<std::string>();
  return Status::ok();
}

// role_control: {margin: 2, ...}: each a number, one of the router's
// --role-* settings.
Status read_role_control(const YAML::Node& node, std::map<std::string, std::string>* out) {
  if (!node) return Status::ok();
  if (!node.IsMap()) return invalid_argument("'role_control' must be a mapping of setting: number");
  static const char* kSettings[] = {"margin",          "hold_s",     "cooldown_s",
                                    "kv_usage_weight", "interval_s", "drain_timeout_s"};
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (std::find_if(std::begin(kSettings), std::end(kSettings), [&](const char* k) { return key == k; }) ==
        std::end(kSettings)) {
      return invalid_argument(
          "unknown field 'role_control.{}' (expected margin, hold_s, cooldown_s, kv_usage_weight, interval_s, "
          "drain_timeout_s)",
          key);
    }
    double value = 0;
    if (!kv.second.IsScalar() || !YAML::convert<double>::decode(kv.second, value) || !(value >= 0)) {
      return invalid_argument("'role_control.{}' must be a number >= 0", key);
    }
    (*out)[key] = kv.second.as<std::string>();
  }
  return Status::ok();
}

}  // namespace

Result<DeploySpec> DeploySpec::parse_yaml(const std::string& text) {
  DeploySpec spec;
  try {
    YAML::Node root = YAML::Load(text);
    BATON_RETURN_IF_ERROR(check_yaml_limits(root, "the deployment spec"));
    if (!root.IsMap()) return invalid_argument("a deployment spec must be a YAML mapping");
    static const char* kKnown[] = {"name",
                                   "model",
                                   "device",
                                   "mode",
                                   "kv_transport",
                                   "engine_args",
                                   "tensor_parallel_size",
                                   "prefill",
                                   "decode",
                                   "agg",
                                   "replicas",
                                   "router",
                                   "base_port",
                                   "base_kv_port",
                                   "gpus",
                                   "discovery",
                                   "restart",
                                   "host",
                                   "health_timeout_s",
                                   "shutdown_grace_s",
                                   "role_control",
                                   "enable_expert_parallel",
                                   "kv_cache_dtype"};
    for (const auto& kv : root) {
      std::string key = kv.first.as<std::string>();
      bool known = false;
      for (const char* k : kKnown) known |= key == k;
      if (!known) return invalid_argument("unknown field '{}' in the deployment spec", key);
    }
    if (root["name"]) spec.name = root["name"].as<std::string>();
    if (root["model"]) spec.model = root["model"].as<std::string>();
    if (spec.model == "default") spec.model.clear();
    if (root["device"]) spec.device = root["device"].as<std::string>();
    if (root["mode"]) spec.mode = root["mode"].as<std::string>();
    if (root["kv_transport"]) spec.kv_transport = root["kv_transport"].as<std::string>();
    if (root["host"]) spec.host = root["host"].as<std::string>();
    if (root["base_port"]) spec.base_port = root["base_port"].as<int>();
    if (root["base_kv_port"]) spec.base_kv_port = root["base_kv_port"].as<int>();
    if (root["discovery"]) spec.discovery = root["discovery"].as<std::string>();
    if (root["restart"]) spec.restart = root["restart"].as<bool>();
    if (root["health_timeout_s"]) spec.health_timeout_s = root["health_timeout_s"].as<double>();
    if (root["shutdown_grace_s"]) spec.shutdown_grace_s = root["shutdown_grace_s"].as<double>();
    if (!(spec.shutdown_grace_s >= 0 && spec.shutdown_grace_s <= 3600)) {
      return invalid_argument("shutdown_grace_s must be between 0 and 3600 seconds, got {}", spec.shutdown_grace_s);
    }
    if (root["gpus"]) spec.gpus = root["gpus"].as<std::vector<int>>();
    if (root["tensor_parallel_size"]) {
      spec.tensor_parallel_size = root["tensor_parallel_size"].as<int>();
      if (spec.tensor_parallel_size < 1) {
        return invalid_argument("tensor_parallel_size must be at least 1, got {}", spec.tensor_parallel_size);
      }
    }
    if (root["enable_expert_parallel"]) spec.enable_expert_parallel = root["enable_expert_parallel"].as<bool>();
    if (root["kv_cache_dtype"]) {
      spec.kv_cache_dtype = root["kv_cache_dtype"].as<std::string>();
      BATON_RETURN_IF_ERROR(check_kv_cache_dtype(spec.kv_cache_dtype, "kv_cache_dtype"));
    }
    BATON_RETURN_IF_ERROR(read_args(root["engine_args"], "engine_args", &spec.engine_args));
    BATON_RETURN_IF_ERROR(read_group(root["prefill"], "prefill", &spec.prefill));
    BATON_RETURN_IF_ERROR(read_group(root["decode"], "decode", &spec.decode));
    BATON_RETURN_IF_ERROR(read_group(root["agg"], "agg", &spec.agg));
    if (root["replicas"]) spec.agg.replicas = root["replicas"].as<int>();
    if (const YAML::Node router = root["router"]) BATON_RETURN_IF_ERROR(read_router(router, &spec));
    BATON_RETURN_IF_ERROR(read_role_control(root["role_control"], &spec.role_control));
  } catch (const YAML::Exception& e) {
    return invalid_argument("bad deployment spec: {}", e.what());
  }
  if (spec.device != "cpu" && spec.device != "cuda") {
    return invalid_argument("device must be cpu or cuda, got '{}'", spec.device);
  }
  if (spec.mode == "agg") {
    if (spec.agg.replicas < 1) return invalid_argument("mode agg needs replicas >= 1");
    if (spec.prefill.replicas || spec.decode.replicas) {
      return invalid_argument("mode agg takes 'replicas', not prefill/decode groups");
    }
  } else if (spec.mode == "pd") {
    if (spec.prefill.replicas < 1 || spec.decode.replicas < 1) {
      return invalid_argument("mode pd needs prefill.replicas >= 1 and decode.replicas >= 1");
    }
    if (spec.agg.replicas) return invalid_argument("mode pd takes prefill/decode groups, not 'replicas'");
  } else if (spec.mode == "adaptive") {
    if (spec.prefill.replicas < 1 || spec.decode.replicas < 1) {
      return invalid_argument(
          "mode adaptive needs prefill.replicas >= 1 and decode.replicas >= 1 (the instances' first roles; the "
          "controller never moves the last of a side)");
    }
    if (spec.agg.replicas) return invalid_argument("mode adaptive takes prefill/decode groups, not 'replicas'");
  } else {
    return invalid_argument("mode must be agg, pd or adaptive, got '{}'", spec.mode);
  }
  BATON_RETURN_IF_ERROR(check_sizes(spec));
  if (spec.mode != "adaptive" && !spec.role_control.empty()) {
    return invalid_argument("'role_control' is for mode adaptive (this spec's mode is {})", spec.mode);
  }
  if (!spec.router_disagg.empty()) {
    if (spec.mode == "agg") return invalid_argument("router.disagg is for mode pd or adaptive, not agg");
    if (spec.router_disagg != "always" && spec.router_disagg != "conditional" && spec.router_disagg != "auto") {
      return invalid_argument("router.disagg must be always, conditional or auto, got '{}'", spec.router_disagg);
    }
  }
  for (const auto* args :
       {&spec.engine_args, &spec.agg.engine_args, &spec.prefill.engine_args, &spec.decode.engine_args}) {
    auto it = args->find("tensor-parallel-size");
    if (it != args->end() && !parse_positive(it->second)) {
      return invalid_argument("engine argument tensor-parallel-size must be a positive integer, got '{}'", it->second);
    }
    if (auto kv = args->find("kv-cache-dtype"); kv != args->end())
      BATON_RETURN_IF_ERROR(check_kv_cache_dtype(kv->second, "engine argument kv-cache-dtype"));
  }
  if (spec.mode != "agg" && spec.kv_cache_dtype_of(spec.prefill) != spec.kv_cache_dtype_of(spec.decode)) {
    return invalid_argument(
        "prefill kv_cache_dtype {} and decode kv_cache_dtype {} differ: a decode reads the prefill's KV blocks "
        "as they are, so both roles must cache the same dtype",
        spec.kv_cache_dtype_of(spec.prefill), spec.kv_cache_dtype_of(spec.decode));
  }
  if (spec.router_port <= 0 || spec.router_port > 65535) {
    return invalid_argument("router.port out of range: {}", spec.router_port);
  }
  if (!spec.discovery.empty() && spec.discovery.rfind("etcd://", 0) != 0) {
    return invalid_argument("discovery must be etcd://HOST:PORT, got '{}'", spec.discovery);
  }
  return spec;
}

Result<DeploySpec> DeploySpec::load(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(std::string text, read_file(path));
  auto spec = parse_yaml(text);
  if (!spec.is_ok()) return spec.status().with_context(path);
  return spec;
}

std::string InstanceSpec::url(const std::string& spec_host) const {
  return "http://" + (host.empty() ? spec_host : host) + ":" + std::to_string(port);
}

int DeploySpec::tensor_parallel_size_of(const RoleGroup& group) const {
  if (group.tensor_parallel_size > 0) return group.tensor_parallel_size;
  if (tensor_parallel_size > 0) return tensor_parallel_size;
  for (const auto* args : {&group.engine_args, &engine_args}) {
    if (auto it = args->find("tensor-parallel-size"); it != args->end()) return parse_positive(it->second).value_or(1);
  }
  return 1;
}

bool DeploySpec::expert_parallel_of(const RoleGroup& group) const {
  if (group.enable_expert_parallel) return *group.enable_expert_parallel;
  if (enable_expert_parallel) return *enable_expert_parallel;
  return group.engine_args.count("enable-expert-parallel") > 0 || engine_args.count("enable-expert-parallel") > 0;
}

std::string DeploySpec::kv_cache_dtype_of(const RoleGroup& group) const {
  std::string value = "auto";
  if (!group.kv_cache_dtype.empty()) value = group.kv_cache_dtype;
  else if (!kv_cache_dtype.empty()) value = kv_cache_dtype;
  else if (auto it = group.engine_args.find("kv-cache-dtype"); it != group.engine_args.end()) value = it->second;
  else if (auto it2 = engine_args.find("kv-cache-dtype"); it2 != engine_args.end()) value = it2->second;
  return value == "fp8_e4m3" ? "fp8" : value;
}

std::string InstanceSpec::cuda_visible_devices() const { return fmt::format("{}", fmt::join(gpus, ",")); }

namespace {

void append_args(const std::map<std::string, std::string>& args, std::vector<std::string>* out) {
  for (const auto& [key, value] : args) {
    out->push_back("--" + key);
    if (!value.empty()) out->push_back(value);
  }
}

}  // namespace

Result<std::vector<InstanceSpec>> plan_instances(const DeploySpec& spec) {
  std::vector<std::pair<InstanceRole, const RoleGroup*>> groups;
  if (spec.mode == "agg") {
    groups.emplace_back(InstanceRole::kAgg, &spec.agg);
  } else {
    groups.emplace_back(InstanceRole::kPrefill, &spec.prefill);
    groups.emplace_back(InstanceRole::kDecode, &spec.decode);
  }
  int total = 0, total_gpus = 0;
  for (auto& g : groups) {
    total += g.second->replicas;
    total_gpus += g.second->replicas * spec.tensor_parallel_size_of(*g.second);
  }
  if (spec.device == "cuda" && !spec.gpus.empty() && static_cast<int>(spec.gpus.size()) < total_gpus) {
    return invalid_argument("{} instances need {} GPUs (tensor_parallel_size GPUs each), but 'gpus' lists {}", total,
                            total_gpus, spec.gpus.size());
  }
  std::vector<InstanceSpec> out;
  int index = 0, next_gpu = 0;
  for (auto& [role, group] : groups) {
    for (int r = 0; r < group->replicas; ++r, ++index) {
      InstanceSpec inst;
      inst.role = role;
      inst.name = std::string(role_name(role)) + "-" + std::to_string(r);
      inst.port = spec.base_port + index;
      inst.kv_port = spec.base_kv_port + index;
      inst.tensor_parallel_size = spec.tensor_parallel_size_of(*group);
      inst.enable_expert_parallel = spec.expert_parallel_of(*group);
      if (spec.device == "cuda") {
        for (int g = 0; g < inst.tensor_parallel_size; ++g, ++next_gpu)
          inst.gpus.push_back(spec.gpus.empty() ? next_gpu : spec.gpus[next_gpu]);
        inst.gpu = inst.gpus.front();
      }
      inst.args = {"serve",
                   "--host",
                   spec.host,
                   "--port",
                   std::to_string(inst.port),
                   "--device",
                   spec.device,
                   "--served-model-name",
                   spec.name};
      if (!spec.model.empty()) {
        inst.args.push_back("--model");
        inst.args.push_back(spec.model);
      }
      if (role != InstanceRole::kAgg) {
        inst.args.insert(inst.args.end(), {"--role", role_name(role), "--kv-transport", spec.kv_transport, "--kv-port",
                                           std::to_string(inst.kv_port)});
      }
      if (spec.mode == "adaptive") inst.args.push_back("--role-switching");
      std::map<std::string, std::string> args = spec.engine_args;
      for (const auto& [k, v] : group->engine_args) args[k] = v;
      // The field wins over an engine argument of the same name (one value reaches the instance).
      if (inst.tensor_parallel_size > 1 || args.count("tensor-parallel-size")) {
        args["tensor-parallel-size"] = std::to_string(inst.tensor_parallel_size);
      }
      if (inst.enable_expert_parallel) args["enable-expert-parallel"] = "";  // a bare flag
      else args.erase("enable-expert-parallel");
      if (const std::string kv = spec.kv_cache_dtype_of(*group); kv != "auto" || args.count("kv-cache-dtype"))
        args["kv-cache-dtype"] = kv;
      // The drain each instance gets on SIGTERM: within the supervisor's grace, so it ends
      // with "server stopped" rather than a SIGKILL.
      args["shutdown-grace-s"] = fmt::format("{}", spec.shutdown_grace_s);
      append_args(args, &inst.args);
      if (!spec.discovery.empty()) {
        inst.args.insert(inst.args.end(), {"--discovery", spec.discovery});
      }
      out.push_back(std::move(inst));
    }
  }
  return out;
}

void set_flag(std::vector<std::string>* args, const std::string& flag, const std::string& value) {
  auto it = std::find(args->begin(), args->end(), flag);
  if (it != args->end() && it + 1 != args->end()) {
    *(it + 1) = value;
  } else {
    args->insert(args->end(), {flag, value});
  }
}

std::vector<std::string> router_flags(const DeploySpec& spec) {
  const std::string mode = spec.mode == "agg" ? "agg" : "pd";  // adaptive: pd with role control
  std::vector<std::string> args = {"--mode", mode, "--policy", spec.router_policy};
  if (!spec.router_disagg.empty()) args.insert(args.end(), {"--disagg", spec.router_disagg});
  if (!spec.router_tokenizer.empty()) args.insert(args.end(), {"--tokenizer", spec.router_tokenizer});
  if (spec.mode == "adaptive") {
    args.push_back("--role-control");
    for (const auto& [key, value] : spec.role_control) {
      std::string flag = "--role-" + key;
      std::replace(flag.begin(), flag.end(), '_', '-');
      args.insert(args.end(), {flag, value});
    }
  }
  return args;
}

std::vector<std::string> router_args(const DeploySpec& spec, const std::vector<InstanceSpec>& instances) {
  std::vector<std::string> args = {"proxy", "--host", spec.host, "--port", std::to_string(spec.router_port)};
  for (std::string& flag : router_flags(spec)) args.push_back(std::move(flag));
  auto join = [&](InstanceRole role) {
    std::string urls;
    for (const auto& inst : instances) {
      if (inst.role != role) continue;
      if (!urls.empty()) urls += ",";
      urls += inst.url(spec.host);
    }
    return urls;
  };
  if (!spec.discovery.empty()) {
    args.insert(args.end(), {"--discovery", spec.discovery});
  } else if (spec.mode == "agg") {
    args.insert(args.end(), {"--replica", join(InstanceRole::kAgg)});
  } else {
    args.insert(args.end(), {"--prefill", join(InstanceRole::kPrefill), "--decode", join(InstanceRole::kDecode)});
  }
  return args;
}

}  // namespace baton::deploy

#include "deploy/k8s_manifests.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>

#include <fmt/format.h>

#include "common/json.h"

namespace baton::deploy {

namespace {

constexpr const char* kModelsMount = "/models";
constexpr const char* kSecretMount = "/etc/baton/kv";
constexpr const char* kSecretKey = "kv-secret";

// A string YAML would read back as something else (a number, a boolean,
// null): Kubernetes wants args and annotations as strings, so it is quoted.
bool reads_as_non_string(const std::string& s) {
  static const std::regex kNumber("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+");
  static const std::regex kWord(
      "(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|"
      "OFF|null|Null|NULL|~|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))");
  return s.empty() || std::regex_match(s, kNumber) || std::regex_match(s, kWord);
}

// JSON (what the objects are built as) to YAML (what kubectl users read).
void emit(YAML::Emitter& out, const Json& j) {
  if (j.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      out << YAML::Key << k << YAML::Value;
      emit(out, v);
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    out << YAML::BeginSeq;
    for (const Json& v : j) emit(out, v);
    out << YAML::EndSeq;
  } else if (j.is_string()) {
    const std::string& v = j.get_ref<const std::string&>();
    if (reads_as_non_string(v)) out << YAML::DoubleQuoted;
    out << v;
  } else if (j.is_boolean()) {
    out << j.get<bool>();
  } else if (j.is_number_integer()) {
    out << j.get<int64_t>();
  } else if (j.is_number()) {
    out << j.get<double>();
  } else {
    out << YAML::Null;
  }
}

std::string yaml_documents(const std::vector<Json>& objects) {
  YAML::Emitter out;
  for (const Json& o : objects) {
    out << YAML::BeginDoc;
    emit(out, o);
  }
  return std::string(out.c_str()) + "\n";
}

// A DNS-1123 label: what Kubernetes accepts as the names built from the spec's.
Status check_name(const std::string& name) {
  static const std::regex kLabel("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  if (name.size() > 40 || !std::regex_match(name, kLabel)) {
    return invalid_argument(
        "the spec's name '{}' cannot name Kubernetes objects: lowercase letters, digits and '-', starting and "
        "ending with a letter or digit, at most 40 characters",
        name);
  }
  return Status::ok();
}

struct Names {
  std::string base;  // the spec's name
  std::string etcd() const { return base + "-etcd"; }
  std::string router() const { return base + "-router"; }
  std::string secret() const { return base + "-kv-secret"; }
  std::string role(const std::string& r) const { return base + "-" + r; }
};

Json labels(const Names& n, const std::string& component) {
  return Json{{"app.kubernetes.io/name", "baton"},
              {"app.kubernetes.io/instance", n.base},
              {"app.kubernetes.io/component", component}};
}

Json metadata(const K8sOptions& o, const std::string& name, const Json& labels) {
  Json m{{"name", name}, {"labels", labels}};
  if (!o.ns.empty()) m["namespace"] = o.ns;
  return m;
}

Json http_probe(int port, const std::string& path, int period_s, int failures) {
  return Json{
      {"httpGet", {{"path", path}, {"port", port}}}, {"periodSeconds", period_s}, {"failureThreshold", failures}};
}

std::string etcd_url(const K8sOptions& o, const Names& n) {
  return o.etcd_endpoint.empty() ? fmt::format("etcd://{}:2379", n.etcd()) : o.etcd_endpoint;
}

// One role's StatefulSet and its headless Service.
std::vector<Json> role_objects(const DeploySpec& spec, const K8sOptions& o, const Names& n, const InstanceSpec& first,
                               int replicas) {
  const std::string role = role_name(first.role);
  const std::string name = n.role(role);
  const Json pod_labels = labels(n, role);
  std::vector<std::string> args = first.args;
  set_flag(&args, "--port", std::to_string(spec.base_port));
  set_flag(&args, "--advertise-url", fmt::format("http://$(POD_IP):{}", spec.base_port));
  set_flag(&args, "--discovery", etcd_url(o, n));
  // On SIGTERM an instance leaves etcd first and keeps serving this long, so the router stops sending to it.
  set_flag(&args, "--leave-grace-s", "5");
  Json ports = Json::array({{{"name", "http"}, {"containerPort", spec.base_port}}});
  Json volume_mounts = Json::array(), volumes = Json::array();
  if (first.role != InstanceRole::kAgg) {
    set_flag(&args, "--kv-port", std::to_string(spec.base_kv_port));
    set_flag(&args, "--kv-host", "$(POD_IP)");
    set_flag(&args, "--kv-secret-file", fmt::format("{}/{}", kSecretMount, kSecretKey));
    ports.push_back({{"name", "kv"}, {"containerPort", spec.base_kv_port}});
    volume_mounts.push_back({{"name", "kv-secret"}, {"mountPath", kSecretMount}, {"readOnly", true}});
    // 0400: the instance refuses a secret file others can read.
    volumes.push_back(
        {{"name", "kv-secret"},
         {"secret",
          {{"secretName", o.existing_secret.empty() ? n.secret() : o.existing_secret}, {"defaultMode", 0400}}}});
  }
  if (!spec.model.empty()) {
    volume_mounts.push_back({{"name", "models"}, {"mountPath", kModelsMount}, {"readOnly", true}});
    volumes.push_back(
        {{"name", "models"}, {"persistentVolumeClaim", {{"claimName", o.model_pvc}, {"readOnly", true}}}});
  }
  Json container{
      {"name", "baton"},
      {"image", o.image},
      {"command", Json::array({"baton"})},
      {"args", args},
      {"env", Json::array({{{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}})},
      {"ports", ports},
      // Loading a model takes minutes: the startup probe allows the spec's health_timeout_s.
      {"startupProbe",
       http_probe(spec.base_port, "/health", 10, std::max(1, static_cast<int>(std::ceil(spec.health_timeout_s / 10))))},
      {"readinessProbe", http_probe(spec.base_port, "/health", 5, 2)},
      {"livenessProbe", http_probe(spec.base_port, "/health", 10, 3)},
      {"volumeMounts", volume_mounts}};
  if (spec.device == "cuda") container["resources"] = {{"limits", {{"nvidia.com/gpu", first.tensor_parallel_size}}}};
  Json pod_annotations{{"prometheus.io/scrape", "true"},
                       {"prometheus.io/port", std::to_string(spec.base_port)},
                       {"prometheus.io/path", "/metrics"}};
  Json set{{"apiVersion", "apps/v1"},
           {"kind", "StatefulSet"},
           {"metadata", metadata(o, name, pod_labels)},
           {"spec",
            {{"serviceName", name},
             {"replicas", replicas},
             {"podManagementPolicy", "Parallel"},
             {"selector", {{"matchLabels", pod_labels}}},
             {"template",
              {{"metadata", {{"labels", pod_labels}, {"annotations", pod_annotations}}},
               {"spec",
                {{"terminationGracePeriodSeconds", 60},
                 {"containers", Json::array({container})},
                 {"volumes", volumes}}}}}}}};
  Json service{{"apiVersion", "v1"},
               {"kind", "Service"},
               {"metadata", metadata(o, name, pod_labels)},
               {"spec",
                {{"clusterIP", "None"},
                 {"selector", pod_labels},
                 {"ports", Json::array({{{"name", "http"}, {"port", spec.base_port}}})}}}};
  return {set, service};
}

std::vector<Json> router_objects(const DeploySpec& spec, const K8sOptions& o, const Names& n) {
  const Json pod_labels = labels(n, "router");
  std::vector<std::string> args = {"proxy", "--host", "0.0.0.0", "--port", std::to_string(spec.router_port)};
  for (std::string& flag : router_flags(spec)) args.push_back(std::move(flag));
  args.insert(args.end(), {"--discovery", etcd_url(o, n)});
  Json container{
      {"name", "router"},
      {"image", o.image},
      {"command", Json::array({"baton"})},
      {"args", args},
      {"ports", Json::array({{{"name", "http"}, {"containerPort", spec.router_port}}})},
      // Ready when every role has a healthy instance; alive while it listens.
      {"readinessProbe", http_probe(spec.router_port, "/health", 5, 2)},
      {"livenessProbe", {{"tcpSocket", {{"port", spec.router_port}}}, {"periodSeconds", 10}, {"failureThreshold", 3}}}};
  Json deployment{{"apiVersion", "apps/v1"},
                  {"kind", "Deployment"},
                  {"metadata", metadata(o, n.router(), pod_labels)},
                  {"spec",
                   {{"replicas", 1},
                    {"selector", {{"matchLabels", pod_labels}}},
                    {"template",
                     {{"metadata",
                       {{"labels", pod_labels},
                        {"annotations",
                         {{"prometheus.io/scrape", "true"},
                          {"prometheus.io/port", std::to_string(spec.router_port)},
                          {"prometheus.io/path", "/metrics"}}}}},
                      {"spec", {{"containers", Json::array({container})}}}}}}}};
  Json service{{"apiVersion", "v1"},
               {"kind", "Service"},
               {"metadata", metadata(o, n.router(), pod_labels)},
               {"spec",
                {{"type", o.service_type},
                 {"selector", pod_labels},
                 {"ports", Json::array({{{"name", "http"}, {"port", spec.router_port}, {"targetPort", "http"}}})}}}};
  return {deployment, service};
}

std::vector<Json> etcd_objects(const K8sOptions& o, const Names& n) {
  const Json pod_labels = labels(n, "etcd");
  const std::string url = fmt::format("http://{}:2379", n.etcd());
  Json container{{"name", "etcd"},
                 {"image", o.etcd_image},
                 {"command", Json::array({"etcd"})},
                 {"args", Json::array({"--name=etcd", "--data-dir=/var/lib/etcd",
                                       "--listen-client-urls=http://0.0.0.0:2379", "--advertise-client-urls=" + url})},
                 {"ports", Json::array({{{"name", "client"}, {"containerPort", 2379}}})},
                 {"readinessProbe", http_probe(2379, "/health", 5, 3)},
                 {"volumeMounts", Json::array({{{"name", "data"}, {"mountPath", "/var/lib/etcd"}}})}};
  Json set{{"apiVersion", "apps/v1"},
           {"kind", "StatefulSet"},
           {"metadata", metadata(o, n.etcd(), pod_labels)},
           {"spec",
            {{"serviceName", n.etcd()},
             {"replicas", 1},
             {"selector", {{"matchLabels", pod_labels}}},
             {"template",
              {{"metadata", {{"labels", pod_labels}}},
               // Registrations are leases that instances renew: a restarted etcd starts empty and they re-register.
               {"spec",
                {{"containers", Json::array({container})},
                 {"volumes", Json::array({{{"name", "data"}, {"emptyDir", Json::object()}}})}}}}}}}};
  Json service{{"apiVersion", "v1"},
               {"kind", "Service"},
               {"metadata", metadata(o, n.etcd(), pod_labels)},
               {"spec", {{"selector", pod_labels}, {"ports", Json::array({{{"name", "client"}, {"port", 2379}}})}}}};
  return {set, service};
}

}  // namespace

Result<std::vector<K8sFile>> k8s_manifests(const DeploySpec& spec, const K8sOptions& o,
                                           std::vector<std::string>* notes) {
  BATON_RETURN_IF_ERROR(check_name(spec.name));
  if (o.service_type != "ClusterIP" && o.service_type != "NodePort" && o.service_type != "LoadBalancer") {
    return invalid_argument("service type must be ClusterIP, NodePort or LoadBalancer, got '{}'", o.service_type);
  }
  if (!o.etcd_endpoint.empty() && o.etcd_endpoint.rfind("etcd://", 0) != 0) {
    return invalid_argument("the etcd endpoint must be etcd://HOST:PORT, got '{}'", o.etcd_endpoint);
  }
  const bool pd = spec.mode != "agg";  // pd or adaptive: KV moves between pods
  if (spec.mode == "adaptive") {
    notes->push_back(
        "mode adaptive: a pod keeps the StatefulSet of its first role; the role it serves now is in its /health "
        "(X-Baton-Role) and in the etcd registry, which the router follows");
  }
  if (pd && o.existing_secret.empty() && o.kv_secret_hex.size() < 32) {
    return invalid_argument(
        "a PD deployment needs a KV secret of at least 16 bytes (32 hex digits), or an existing "
        "Secret");
  }
  const Names n{spec.name};
  DeploySpec k = spec;
  k.host = "0.0.0.0";  // pods listen on their own address
  k.gpus.clear();      // the scheduler places pods on GPUs
  k.discovery = etcd_url(o, n);
  if (!k.router_tokenizer.empty()) {
    notes->push_back(fmt::format("router.tokenizer {} is a path on this host, not in the router's pod: left out",
                                 k.router_tokenizer));
    k.router_tokenizer.clear();
  }
  if (!spec.model.empty()) {
    k.model = fmt::format("{}/{}", kModelsMount, std::filesystem::path(spec.model).filename().string());
    notes->push_back(fmt::format("the model '{}' is read from {} in the PersistentVolumeClaim '{}' (mounted at {})",
                                 spec.model, k.model, o.model_pvc, kModelsMount));
  }
  if (pd && k.kv_transport != "tcp") {
    notes->push_back(
        fmt::format("kv_transport {} moves KV between processes of one host, and pods are not: the "
                    "manifests use tcp",
                    k.kv_transport));
    k.kv_transport = "tcp";
  }
  BATON_ASSIGN_OR_RETURN(std::vector<InstanceSpec> instances, plan_instances(k));
  std::vector<K8sFile> files;
  if (pd && o.existing_secret.empty()) {
    Json secret{{"apiVersion", "v1"},
                {"kind", "Secret"},
                {"metadata", metadata(o, n.secret(), labels(n, "kv-secret"))},
                {"type", "Opaque"},
                {"stringData", {{kSecretKey, o.kv_secret_hex}}}};
    files.push_back({"kv-secret.yaml", yaml_documents({secret})});
    notes->push_back("kv-secret.yaml holds the KV secret in clear: apply it, then keep it out of version control");
  }
  if (o.etcd_endpoint.empty()) files.push_back({"etcd.yaml", yaml_documents(etcd_objects(o, n))});
  for (InstanceRole role : {InstanceRole::kAgg, InstanceRole::kPrefill, InstanceRole::kDecode}) {
    auto first = std::find_if(instances.begin(), instances.end(),
                              [&](const InstanceSpec& i) { return i.role == role; });
    if (first == instances.end()) continue;
    const int replicas = static_cast<int>(
        std::count_if(instances.begin(), instances.end(), [&](const InstanceSpec& i) { return i.role == role; }));
    files.push_back({std::string(role_name(role)) + ".yaml", yaml_documents(role_objects(k, o, n, *first, replicas))});
  }
  files.push_back({"router.yaml", yaml_documents(router_objects(k, o, n))});
  return files;
}

}  // namespace baton::deploy

#include "cli/k8s_emit.h"

#include <filesystem>
#include <iostream>

#include "common/json.h"
#include "kv_transfer/kv_secret.h"

namespace baton::cli {

void add_k8s_emit_flags(CLI::App& sub, K8sEmitFlags& f) {
  sub.add_option("--emit", f.emit, "Write the deployment's manifests instead of starting it: k8s")
      ->check(CLI::IsMember({"k8s"}));
  sub.add_option("--out", f.out_dir, "--emit: the folder the manifests go to (kubectl apply -f DIR)");
  sub.add_option("--image", f.options.image, "--emit k8s: the container image with baton on its PATH")
      ->capture_default_str();
  sub.add_option("--namespace", f.options.ns, "--emit k8s: the objects' namespace (default: kubectl's)");
  sub.add_option("--model-pvc", f.options.model_pvc,
                 "--emit k8s: the PersistentVolumeClaim holding the model folders (mounted at /models)")
      ->capture_default_str();
  sub.add_option("--etcd", f.options.etcd_endpoint, "--emit k8s: an existing etcd://HOST:PORT (default: emit one)");
  sub.add_option("--kv-secret-name", f.options.existing_secret,
                 "--emit k8s: an existing Secret (key kv-secret) PD peers authenticate with (default: a new one)");
  sub.add_option("--service-type", f.options.service_type, "--emit k8s: the router's Service type")
      ->check(CLI::IsMember({"ClusterIP", "NodePort", "LoadBalancer"}))
      ->capture_default_str();
}

int emit_k8s(const std::string& spec_path, K8sEmitFlags f) {
  auto fail = [](const std::string& message) {
    std::cerr << "baton up: " << message << "\n";
    return 2;
  };
  if (f.out_dir.empty()) return fail("--emit k8s needs --out DIR");
  auto spec = deploy::DeploySpec::load(spec_path);
  if (!spec.is_ok()) return fail(spec.status().message());
  if (spec->mode != "agg" && f.options.existing_secret.empty()) {  // pd or adaptive: KV moves between pods
    auto secret = random_hex(32);                                  // OpenSSL's CSPRNG
    if (!secret.is_ok()) return fail(secret.status().message());
    f.options.kv_secret_hex = *secret;
  }
  std::vector<std::string> notes;
  auto files = deploy::k8s_manifests(*spec, f.options, &notes);
  if (!files.is_ok()) return fail(files.status().message());
  std::error_code ec;
  std::filesystem::create_directories(f.out_dir, ec);
  if (ec) return fail("cannot create '" + f.out_dir + "': " + ec.message());
  for (const deploy::K8sFile& file : *files) {
    const std::string path = (std::filesystem::path(f.out_dir) / file.name).string();
    if (file.name == "kv-secret.yaml") {
      // Owner-only before the secret is written into it.
      Status made = write_file(path, "");
      if (!made.is_ok()) return fail(made.message());
      std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
      if (ec) return fail("cannot make '" + path + "' private: " + ec.message());
    }
    Status st = write_file(path, file.yaml);
    if (!st.is_ok()) return fail(st.message());
    std::cout << "wrote " << path << "\n";
  }
  for (const std::string& note : notes) std::cerr << "baton up: note: " << note << "\n";
  std::cout << "apply with: kubectl apply -f " << f.out_dir << "\n";
  return 0;
}

}  // namespace baton::cli

// `baton up --emit k8s SPEC --out DIR`: writes the deployment's Kubernetes
// manifests (deploy/k8s_manifests.h) instead of starting it.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "deploy/k8s_manifests.h"

namespace baton::cli {

struct K8sEmitFlags {
  std::string emit;     // "k8s", or empty: start the deployment here
  std::string out_dir;  // where the manifests go
  deploy::K8sOptions options;
};

void add_k8s_emit_flags(CLI::App& sub, K8sEmitFlags& flags);

// Writes the manifests of the spec at `spec_path`; 0 on success, else 2 with the reason on stderr.
int emit_k8s(const std::string& spec_path, K8sEmitFlags flags);

}  // namespace baton::cli

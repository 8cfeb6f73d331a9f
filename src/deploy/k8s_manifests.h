// `baton up --emit k8s SPEC --out DIR`: the Kubernetes manifests of a
// deployment spec, for `kubectl apply -f DIR`. One StatefulSet per role
// (prefill, decode, or agg), each pod one instance on one GPU, with a
// headless Service; the router as a Deployment behind a Service; etcd, which
// instances register with and the router discovers them through (or an
// existing etcd); the KV secret PD peers authenticate with as a Secret,
// mounted as a file. Probes and Prometheus annotations on every pod.
// docs/deploy-k8s.md has how to run them.
//
// Pods do not share a host's processes: a spec's kv_transport of local, shm or
// cuda_ipc becomes tcp in the manifests (said in `notes`).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "deploy/deploy_spec.h"

namespace baton::deploy {

struct K8sOptions {
  std::string image = "baton:latest";      // an image with the baton binary on its PATH
  std::string ns;                          // metadata.namespace; empty: the kubectl context's
  std::string model_pvc = "baton-models";  // PersistentVolumeClaim of model folders, mounted at /models
  std::string etcd_endpoint;               // etcd://HOST:PORT of an existing etcd; empty: emit one
  std::string etcd_image = "quay.io/coreos/etcd:v3.5.17";
  std::string kv_secret_hex;               // the Secret's value (PD); ignored with existing_secret
  std::string existing_secret;             // a Secret already in the cluster, key "kv-secret"
  std::string service_type = "ClusterIP";  // the router's Service: ClusterIP, NodePort or LoadBalancer
};

struct K8sFile {
  std::string name;  // e.g. "prefill.yaml"
  std::string yaml;  // one or more documents
};

// The manifests, one file per component. `notes` gets what the user should
// know (a transport changed, a secret written in clear).
Result<std::vector<K8sFile>> k8s_manifests(const DeploySpec& spec, const K8sOptions& options,
                                           std::vector<std::string>* notes);

}  // namespace baton::deploy

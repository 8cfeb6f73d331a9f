#include "tools/gpu_profile/step_kernels.h"

#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/kernels.h"
#include "tools/gpu_profile/kernel_names.h"

namespace baton::cuda {
namespace {

constexpr double kReplayBatchMs = 20;  // replays timed together, about this long
constexpr int kMaxKernelNames = 48;    // copies of the graph made at most

// The driver calls the runtime has no form of: a kernel node's function as
// the driver holds it (a library's kernels too), and its name.
struct DriverCalls {
  PFN_cuGraphKernelNodeGetParams_v12000 get_params = nullptr;
  PFN_cuGraphKernelNodeSetParams_v12000 set_params = nullptr;
  PFN_cuFuncGetName_v12030 func_name = nullptr;
  PFN_cuKernelGetName_v12030 kernel_name = nullptr;
};

Status load_driver_calls(DriverCalls* d) {
  auto entry = [](const char* name, int version, void** fn) -> Status {
    cudaDriverEntryPointQueryResult query{};
    const cudaError_t e = cudaGetDriverEntryPointByVersion(name, fn, version, cudaEnableDefault, &query);
    if (e != cudaSuccess || query != cudaDriverEntryPointSuccess || *fn == nullptr)
      return unimplemented("the CUDA driver has no {} (version {}): {}", name, version, cudaGetErrorString(e));
    return Status::ok();
  };
  BATON_RETURN_IF_ERROR(entry("cuGraphKernelNodeGetParams", 12000, reinterpret_cast<void**>(&d->get_params)));
  BATON_RETURN_IF_ERROR(entry("cuGraphKernelNodeSetParams", 12000, reinterpret_cast<void**>(&d->set_params)));
  BATON_RETURN_IF_ERROR(entry("cuFuncGetName", 12030, reinterpret_cast<void**>(&d->func_name)));
  BATON_RETURN_IF_ERROR(entry("cuKernelGetName", 12030, reinterpret_cast<void**>(&d->kernel_name)));
  return Status::ok();
}

Result<std::string> kernel_node_name(const DriverCalls& d, cudaGraphNode_t node) {
  CUDA_KERNEL_NODE_PARAMS p{};
  if (d.get_params(node, &p) != CUDA_SUCCESS) return internal_error("cuGraphKernelNodeGetParams failed");
  const char* name = nullptr;
  if (p.func != nullptr) d.func_name(&name, p.func);
  else if (p.kern != nullptr) d.kernel_name(&name, p.kern);
  return kernel_display_name(name != nullptr ? name : "(unnamed kernel)");
}

// Makes `node` (a kernel node of a copy of the graph) launch the wait-only
// kernel instead: one block of 32 threads, or one cluster where the node
// launches clusters (cuBLASLt's kernels may).
Status replace_with_wait(const DriverCalls& d, cudaGraphNode_t node, CUfunction wait_fn) {
  unsigned cx = 1, cy = 1, cz = 1;
  cudaLaunchAttributeValue cluster{};
  if (cudaGraphKernelNodeGetAttribute(node, cudaLaunchAttributeClusterDimension, &cluster) == cudaSuccess) {
    cx = std::max(1u, cluster.clusterDim.x);
    cy = std::max(1u, cluster.clusterDim.y);
    cz = std::max(1u, cluster.clusterDim.z);
  }
  cudaGetLastError();  // a node without the attribute may leave an error behind
  CUDA_KERNEL_NODE_PARAMS p{};
  p.func = wait_fn;
  p.gridDimX = cx;
  p.gridDimY = cy;
  p.gridDimZ = cz;
  p.blockDimX = 32;
  p.blockDimY = 1;
  p.blockDimZ = 1;
  if (d.set_params(node, &p) != CUDA_SUCCESS) return internal_error("cuGraphKernelNodeSetParams failed");
  return Status::ok();
}

// One graph the rounds replay: the step's as it is, or a copy with one
// kernel's launches left out.
struct Variant {
  std::string name;  // empty: the whole graph
  int launches = 0;
  cudaGraph_t copy = nullptr;  // owned; null for the whole graph
  cudaGraphExec_t exec = nullptr;
  std::vector<double> ms;
};

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

Result<double> replay_ms(cudaGraphExec_t exec, int replays, cudaStream_t s, cudaEvent_t e0, cudaEvent_t e1) {
  BATON_CUDA_RETURN(cudaEventRecord(e0, s));
  for (int i = 0; i < replays; ++i) BATON_CUDA_RETURN(cudaGraphLaunch(exec, s));
  BATON_CUDA_RETURN(cudaEventRecord(e1, s));
  BATON_CUDA_RETURN(cudaEventSynchronize(e1));
  float ms = 0;
  BATON_CUDA_RETURN(cudaEventElapsedTime(&ms, e0, e1));
  return static_cast<double>(ms) / replays;
}

Status time_variants(std::vector<Variant>& variants, int rounds, cudaStream_t s, cudaEvent_t e0, cudaEvent_t e1) {
  BATON_ASSIGN_OR_RETURN(double first_ms, replay_ms(variants[0].exec, 3, s, e0, e1));  // warm-up
  const int replays = std::clamp(static_cast<int>(std::ceil(kReplayBatchMs / std::max(first_ms, 1e-3))), 3, 200);
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i < variants.size(); ++i) {
      // Every second round in reverse, so that no variant always runs first.
      Variant& v = variants[r % 2 == 0 ? i : variants.size() - 1 - i];
      BATON_ASSIGN_OR_RETURN(double ms, replay_ms(v.exec, replays, s, e0, e1));
      v.ms.push_back(ms);
    }
  return Status::ok();
}

}  // namespace

Result<StepKernels> time_step_kernels(CudaBackend& b, const StepInput& step, int rounds) {
  DriverCalls d;
  BATON_RETURN_IF_ERROR(load_driver_calls(&d));
  // The first run captures the step's graph; the last leaves its inputs on the device for the replays.
  for (int i = 0; i < 2; ++i) BATON_RETURN_IF_ERROR(b.execute(step).status());
  cudaGraph_t graph = b.decode_graph(step.num_seqs(), step.max_blocks_per_seq);
  if (graph == nullptr)
    return failed_precondition("no captured graph for a decode step of {} sequences (CUDA graphs off?)",
                               step.num_seqs());
  size_t num_nodes = 0;
  BATON_CUDA_RETURN(cudaGraphGetNodes(graph, nullptr, &num_nodes));
  std::vector<cudaGraphNode_t> nodes(num_nodes);
  BATON_CUDA_RETURN(cudaGraphGetNodes(graph, nodes.data(), &num_nodes));
  std::map<std::string, std::vector<cudaGraphNode_t>> by_name;
  StepKernels out;
  for (cudaGraphNode_t node : nodes) {
    cudaGraphNodeType type{};
    BATON_CUDA_RETURN(cudaGraphNodeGetType(node, &type));
    if (type != cudaGraphNodeTypeKernel) continue;
    BATON_ASSIGN_OR_RETURN(std::string name, kernel_node_name(d, node));
    by_name[name].push_back(node);
    ++out.kernel_nodes;
  }
  if (by_name.size() > kMaxKernelNames)
    return resource_exhausted("the step launches {} distinct kernels; at most {} are timed", by_name.size(),
                              kMaxKernelNames);
  cudaFunction_t wait_fn = nullptr;
  BATON_CUDA_RETURN(cudaGetFuncBySymbol(&wait_fn, wait_only_kernel_symbol()));

  std::vector<Variant> variants(1);
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  auto release = [&] {
    for (Variant& v : variants) {
      if (v.exec != nullptr) cudaGraphExecDestroy(v.exec);
      if (v.copy != nullptr) cudaGraphDestroy(v.copy);
    }
    if (e0 != nullptr) cudaEventDestroy(e0);
    if (e1 != nullptr) cudaEventDestroy(e1);
  };
  auto build = [&]() -> Status {
    BATON_CUDA_RETURN(cudaGraphInstantiate(&variants[0].exec, graph, 0));
    for (const auto& [name, launches] : by_name) {
      Variant& v = variants.emplace_back();
      v.name = name;
      v.launches = static_cast<int>(launches.size());
      BATON_CUDA_RETURN(cudaGraphClone(&v.copy, graph));
      for (cudaGraphNode_t node : launches) {
        cudaGraphNode_t in_copy = nullptr;
        BATON_CUDA_RETURN(cudaGraphNodeFindInClone(&in_copy, node, v.copy));
        BATON_RETURN_IF_ERROR(replace_with_wait(d, in_copy, wait_fn));
      }
      const cudaError_t e = cudaGraphInstantiate(&v.exec, v.copy, 0);
      if (e != cudaSuccess)
        return internal_error("instantiating the step's graph without {}: {}", name, cudaGetErrorString(e));
    }
    BATON_CUDA_RETURN(cudaEventCreate(&e0));
    BATON_CUDA_RETURN(cudaEventCreate(&e1));
    return time_variants(variants, rounds, b.stream(), e0, e1);
  };
  const Status st = build();
  if (!st.is_ok()) {
    cudaStreamSynchronize(b.stream());
    release();
    return st.with_context("timing the step's kernels in its graph");
  }
  out.graph_ms = median_of(variants[0].ms);
  for (size_t i = 1; i < variants.size(); ++i) {
    KernelCost k;
    k.name = variants[i].name;
    k.launches = variants[i].launches;
    k.without_ms = median_of(variants[i].ms);
    k.cost_us = (out.graph_ms - k.without_ms) * 1e3;
    out.kernels.push_back(k);
  }
  std::sort(out.kernels.begin(), out.kernels.end(),
            [](const KernelCost& a, const KernelCost& c) { return a.cost_us > c.cost_us; });
  release();
  return out;
}

}  // namespace baton::cuda

#include "backend/cuda/cublaslt_library.h"

#include <cublasLt.h>
#include <dlfcn.h>

#include <string>

#define BATON_CUBLASLT_STR2(x) #x
#define BATON_CUBLASLT_STR(x) BATON_CUBLASLT_STR2(x)

namespace baton::cuda {
namespace {

// The soname this build's headers describe, then the unversioned name.
constexpr const char* kLibraryNames[] = {"libcublasLt.so." BATON_CUBLASLT_STR(CUBLAS_VER_MAJOR), "libcublasLt.so"};

struct Library {
  void* handle = nullptr;
  std::string error;
};

const Library& library() {
  static const Library lib = [] {
    Library l;
    for (const char* name : kLibraryNames) {
      l.handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (l.handle) return l;
      const char* why = dlerror();
      l.error += std::string(l.error.empty() ? "" : "; ") + (why ? why : name);
    }
    return l;
  }();
  return lib;
}

// The library's own definition of `name` (not the forwarder below), or null.
template <class Fn>
Fn resolve(const char* name) {
  const Library& l = library();
  return l.handle ? reinterpret_cast<Fn>(dlsym(l.handle, name)) : nullptr;
}

}  // namespace

Status load_cublaslt() {
  const Library& l = library();
  if (l.handle) return Status::ok();
  return unavailable("the CUDA backend needs cuBLASLt ({}), which could not be loaded: {}", kLibraryNames[0], l.error);
}

}  // namespace baton::cuda

// One forwarder per cuBLASLt function the backend calls: the declaration in
// <cublasLt.h> checks each signature. Without the library every call answers
// CUBLAS_STATUS_NOT_INITIALIZED (callers check load_cublaslt() first, for the
// message). A function missing here is a link error, not a silent gap.
#define BATON_CUBLASLT_FORWARD(name, params, args)                       \
  extern "C" cublasStatus_t CUBLASWINAPI name params {                   \
    static const auto fn = baton::cuda::resolve<decltype(&name)>(#name); \
    return fn ? fn args : CUBLAS_STATUS_NOT_INITIALIZED;                 \
  }

BATON_CUBLASLT_FORWARD(cublasLtCreate, (cublasLtHandle_t * handle), (handle))
BATON_CUBLASLT_FORWARD(cublasLtDestroy, (cublasLtHandle_t handle), (handle))
BATON_CUBLASLT_FORWARD(cublasLtMatmul,
                       (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                        cublasLtMatrixLayout_t Adesc, const void* B, cublasLtMatrixLayout_t Bdesc, const void* beta,
                        const void* C, cublasLtMatrixLayout_t Cdesc, void* D, cublasLtMatrixLayout_t Ddesc,
                        const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspaceSizeInBytes,
                        cudaStream_t stream),
                       (handle, desc, alpha, A, Adesc, B, Bdesc, beta, C, Cdesc, D, Ddesc, algo, workspace,
                        workspaceSizeInBytes, stream))
BATON_CUBLASLT_FORWARD(cublasLtMatrixLayoutCreate,
                       (cublasLtMatrixLayout_t * matLayout, cudaDataType type, uint64_t rows, uint64_t cols,
                        int64_t ld),
                       (matLayout, type, rows, cols, ld))
BATON_CUBLASLT_FORWARD(cublasLtMatrixLayoutDestroy, (cublasLtMatrixLayout_t matLayout), (matLayout))
BATON_CUBLASLT_FORWARD(cublasLtMatrixLayoutSetAttribute,
                       (cublasLtMatrixLayout_t matLayout, cublasLtMatrixLayoutAttribute_t attr, const void* buf,
                        size_t sizeInBytes),
                       (matLayout, attr, buf, sizeInBytes))
BATON_CUBLASLT_FORWARD(cublasLtMatmulDescCreate,
                       (cublasLtMatmulDesc_t * matmulDesc, cublasComputeType_t computeType, cudaDataType_t scaleType),
                       (matmulDesc, computeType, scaleType))
BATON_CUBLASLT_FORWARD(cublasLtMatmulDescDestroy, (cublasLtMatmulDesc_t matmulDesc), (matmulDesc))
BATON_CUBLASLT_FORWARD(cublasLtMatmulDescSetAttribute,
                       (cublasLtMatmulDesc_t matmulDesc, cublasLtMatmulDescAttributes_t attr, const void* buf,
                        size_t sizeInBytes),
                       (matmulDesc, attr, buf, sizeInBytes))
BATON_CUBLASLT_FORWARD(cublasLtMatmulPreferenceCreate, (cublasLtMatmulPreference_t * pref), (pref))
BATON_CUBLASLT_FORWARD(cublasLtMatmulPreferenceDestroy, (cublasLtMatmulPreference_t pref), (pref))
BATON_CUBLASLT_FORWARD(cublasLtMatmulPreferenceSetAttribute,
                       (cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                        size_t sizeInBytes),
                       (pref, attr, buf, sizeInBytes))
BATON_CUBLASLT_FORWARD(cublasLtMatmulAlgoGetHeuristic,
                       (cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc, cublasLtMatrixLayout_t Adesc,
                        cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                        cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                        cublasLtMatmulHeuristicResult_t heuristicResultsArray[], int* returnAlgoCount),
                       (lightHandle, operationDesc, Adesc, Bdesc, Cdesc, Ddesc, preference, requestedAlgoCount,
                        heuristicResultsArray, returnAlgoCount))
BATON_CUBLASLT_FORWARD(cublasLtMatmulAlgoCheck,
                       (cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc, cublasLtMatrixLayout_t Adesc,
                        cublasLtMatrixLayout_t Bdesc, cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                        const cublasLtMatmulAlgo_t* algo, cublasLtMatmulHeuristicResult_t* result),
                       (lightHandle, operationDesc, Adesc, Bdesc, Cdesc, Ddesc, algo, result))

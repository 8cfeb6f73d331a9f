// cuBLASLt, loaded when the first GEMM handle is made instead of when the
// process starts. Linked directly, libcublasLt's start-up alone costs every
// `baton` process about 0.25 s and 210 MB of resident memory, a GPU or not
// (measured: a CPU-only `baton --version` 0.03 s and 10 MB; linked 0.22 s and
// 222 MB). cublaslt_library.cpp defines the cuBLASLt functions the backend
// calls, each forwarding to the library opened with dlopen on first use, so
// callers keep calling the cuBLASLt API as declared in <cublasLt.h>.
#pragma once

#include "common/status.h"

namespace baton::cuda {

// Opens libcublasLt (once; later calls return the first answer): ok, or an
// error naming the library and the loader's reason.
Status load_cublaslt();

}  // namespace baton::cuda

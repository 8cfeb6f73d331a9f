// --kv-cache-dtype (vLLM's flag): what the paged KV cache stores.
//   auto: the backend's own dtype (CPU F32, CUDA BF16);
//   fp8 (= fp8_e4m3): OCP e4m3 ("e4m3fn", max 448), one byte a value.
// FP8 values carry vLLM's default per-tensor scales, k_scale = v_scale =
// kKvFp8Scale = 1.0: a write stores e4m3(x / scale) (rounded to nearest even,
// saturated to +-448), a read x = e4m3 * scale. Checkpoint-given k_scale /
// v_scale tensors are not read (docs/fp8.md, "FP8 KV cache").
#pragma once

#include <string>

#include "common/dtype.h"
#include "common/status.h"

namespace baton {

enum class KvCacheDType { kAuto, kFp8 };

inline constexpr float kKvFp8Scale = 1.0f;  // k_scale and v_scale

// "auto", "fp8" or "fp8_e4m3"; anything else is refused naming it.
Result<KvCacheDType> parse_kv_cache_dtype(const std::string& name);
const char* kv_cache_dtype_name(KvCacheDType d);  // "auto", "fp8"

// The cache's element type on a backend whose own dtype is `backend_dtype`.
inline DType resolve_kv_cache_dtype(KvCacheDType d, DType backend_dtype) {
  return d == KvCacheDType::kFp8 ? DType::kF8E4M3 : backend_dtype;
}

}  // namespace baton

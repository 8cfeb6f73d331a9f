#include "kv/kv_cache_dtype.h"

namespace baton {

Result<KvCacheDType> parse_kv_cache_dtype(const std::string& name) {
  if (name == "auto") return KvCacheDType::kAuto;
  if (name == "fp8" || name == "fp8_e4m3") return KvCacheDType::kFp8;
  return invalid_argument("unknown KV cache dtype '{}' (expected auto, fp8 or fp8_e4m3)", name);
}

const char* kv_cache_dtype_name(KvCacheDType d) { return d == KvCacheDType::kFp8 ? "fp8" : "auto"; }

}  // namespace baton

#include "kv_transfer/kv_region.h"

#include <cstdlib>

namespace baton {

const char* kv_dtype_name(KvDType dtype) {
  switch (dtype) {
    case KvDType::kF32: return "F32";
    case KvDType::kF16: return "F16";
    case KvDType::kBF16: return "BF16";
  }
  return "?";
}

size_t kv_dtype_size(KvDType dtype) { return dtype == KvDType::kF32 ? 4 : 2; }

Result<KvDType> parse_kv_dtype(const std::string& name) {
  if (name == "F32" || name == "f32" || name == "float32") return KvDType::kF32;
  if (name == "F16" || name == "f16" || name == "float16") return KvDType::kF16;
  if (name == "BF16" || name == "bf16" || name == "bfloat16") return KvDType::kBF16;
  return invalid_argument("unknown KV dtype '{}' (expected F32, F16 or BF16)", name);
}

const char* memory_kind_name(MemoryKind kind) {
  return kind == MemoryKind::kHost ? "host" : "device";
}

Result<void*> DeviceCopier::alloc_host(size_t num_bytes) {
  if (num_bytes == 0) return invalid_argument("staging buffer: zero bytes asked");
  // aligned_alloc wants a multiple of the alignment.
  const size_t rounded = (num_bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  void* p = std::aligned_alloc(kHostAlignment, rounded);
  if (p == nullptr) return resource_exhausted("staging buffer: cannot allocate {} bytes of host memory", rounded);
  return p;
}

void DeviceCopier::free_host(void* ptr) { std::free(ptr); }

Status KvRegionDesc::validate() const {
  if (base == nullptr) return invalid_argument("KV region: base pointer is null");
  if (num_blocks <= 0) return invalid_argument("KV region: num_blocks must be > 0, got {}", num_blocks);
  if (num_layers <= 0 || num_kv_heads <= 0 || head_dim <= 0 || block_size <= 0) {
    return invalid_argument(
        "KV region: shape must be positive (num_layers={}, num_kv_heads={}, head_dim={}, "
        "block_size={})",
        num_layers, num_kv_heads, head_dim, block_size);
  }
  if (block_bytes != shape_block_bytes()) {
    return invalid_argument("KV region: block_bytes {} does not match the shape ({} bytes)",
                            block_bytes, shape_block_bytes());
  }
  if (memory == MemoryKind::kDevice && device_id < 0) {
    return invalid_argument("KV region: device memory needs a device_id >= 0");
  }
  return Status::ok();
}

}  // namespace baton

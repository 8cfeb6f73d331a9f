#include "kv_transfer/kv_region.h"

#include <cstdlib>

namespace baton {

const char* memory_kind_name(MemoryKind kind) { return kind == MemoryKind::kHost ? "host" : "device"; }

Result<void*> DeviceCopier::alloc_host(size_t num_bytes) {
  if (num_bytes == 0) return invalid_argument("staging buffer: zero bytes asked");
  // aligned_alloc wants a multiple of the alignment.
  const size_t rounded = (num_bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  void* p = std::aligned_alloc(kHostAlignment, rounded);
  if (p == nullptr) return resource_exhausted("staging buffer: cannot allocate {} bytes of host memory", rounded);
  return p;
}

void DeviceCopier::free_host(void* ptr) { std::free(ptr); }

Result<void*> DeviceCopier::alloc_device(size_t num_bytes) {
  return unimplemented("no device memory for a {}-byte KV region: device KV needs a CUDA build of baton", num_bytes);
}

void DeviceCopier::free_device(void* /*ptr*/) {}

Status DeviceCopier::copy_strided(const std::vector<StridedCopy>& copies) {
  if (copies.empty()) return Status::ok();
  return unimplemented("no device copies: relayout of device KV needs a CUDA build of baton");
}

KvRegionDesc KvRegionDesc::of(const KvMemory& memory) {
  KvRegionDesc region;
  region.base = memory.base;
  region.layout = memory.layout;
  region.memory = memory.on_device ? MemoryKind::kDevice : MemoryKind::kHost;
  region.device_id = memory.device_id;
  region.tp = memory.tp_layout();
  return region;
}

Status KvRegionDesc::validate() const {
  if (base == nullptr) return invalid_argument("KV region: base pointer is null");
  if (layout.num_blocks <= 0) return invalid_argument("KV region: num_blocks must be > 0, got {}", layout.num_blocks);
  if (layout.num_layers <= 0 || layout.num_kv_heads <= 0 || layout.head_dim <= 0 || layout.block_size <= 0) {
    return invalid_argument(
        "KV region: shape must be positive (num_layers={}, num_kv_heads={}, head_dim={}, "
        "block_size={})",
        layout.num_layers, layout.num_kv_heads, layout.head_dim, layout.block_size);
  }
  if (memory == MemoryKind::kDevice && device_id < 0) {
    return invalid_argument("KV region: device memory needs a device_id >= 0");
  }
  return Status::ok();
}

}  // namespace baton

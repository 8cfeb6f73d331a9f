// KvRegionDesc: one instance's KV memory as kv_transfer sees it: the
// layout (kv/kv_layout.h, the one the backends allocate), where it lives and
// how peers reach it. A block is contiguous across all layers
// (layout.block_bytes()), so moving a request's KV means copying whole blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv/kv_layout.h"

namespace baton {

enum class MemoryKind { kHost, kDevice };
const char* memory_kind_name(MemoryKind kind);  // "host", "device"

// Copies between host and device memory for transports that stage device KV
// through the host (tcp). The CUDA build provides one; host-only builds have
// none, and a device region without a copier is refused by such transports.
//
// Staging buffers come from alloc_host: a copier that can pin host memory
// (CUDA: cudaHostAlloc) returns page-locked memory, which the device copies
// at full speed and asynchronously; the default is plain heap memory aligned
// to kHostAlignment. Neither is zero-filled. Every pointer from alloc_host
// goes back through free_host of the same copier.
//
// A tensor-parallel instance's device caches also relayout through it
// (pd/tp_kv_relayout.h): a wire-layout region in device memory (alloc_device,
// cudaMalloc, so cuda_ipc peers can map it) and strided device-to-device
// copies of head slices between it and the ranks' caches (copy_strided).
// Their defaults refuse: a build without device support has no device KV.
class DeviceCopier {
 public:
  static constexpr size_t kHostAlignment = 4096;

  // `rows` rows of `width` bytes: row r from src + r * src_pitch to dst + r * dst_pitch.
  struct StridedCopy {
    void* dst = nullptr;
    size_t dst_pitch = 0;
    const void* src = nullptr;
    size_t src_pitch = 0;
    size_t width = 0;
    size_t rows = 0;
  };

  virtual ~DeviceCopier() = default;
  virtual Status to_host(void* host_dst, const void* device_src, size_t num_bytes) = 0;
  virtual Status to_device(void* device_dst, const void* host_src, size_t num_bytes) = 0;

  virtual Result<void*> alloc_host(size_t num_bytes);
  virtual void free_host(void* ptr);
  // True when alloc_host returns page-locked memory.
  virtual bool pins_host() const { return false; }

  // Device memory on the copier's device; every pointer goes back through free_device.
  virtual Result<void*> alloc_device(size_t num_bytes);
  virtual void free_device(void* ptr);
  // Runs every copy (device memory on either side, any device of the
  // process) and returns when all have landed.
  virtual Status copy_strided(const std::vector<StridedCopy>& copies);
};

struct KvRegionDesc {
  void* base = nullptr;  // start of block 0
  KvLayout layout;
  MemoryKind memory = MemoryKind::kHost;
  int device_id = -1;  // CUDA ordinal when memory == kDevice
  // Name of the POSIX shared-memory object that holds the region, when it
  // lives in one (SharedMemoryBuffer); the shm transport needs it.
  std::string shm_name;
  // Staging hook for device regions (not owned); may be null.
  DeviceCopier* copier = nullptr;
  // How the instance's KV heads lie across its tensor-parallel ranks. The
  // region itself is in the wire layout (every KV head once: `layout`);
  // peers exchange this to name both sides' layouts.
  KvTpLayout tp{1, 0, 1};

  // The region of a backend's KV cache (no shm name, no copier yet); at
  // TP > 1 its rank 0's cache, with tp set (PdTransfer puts the base of a
  // region in the wire layout in its place).
  static KvRegionDesc of(const KvMemory& memory);

  size_t block_bytes() const { return layout.block_bytes(); }
  size_t total_bytes() const { return layout.total_bytes(); }
  uint8_t* block_ptr(int64_t block_id) const {
    return static_cast<uint8_t*>(base) + static_cast<size_t>(block_id) * block_bytes();
  }

  // OK when the shape is positive and base is set.
  Status validate() const;
};

}  // namespace baton

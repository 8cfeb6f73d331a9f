// CudaDeviceCopier: the tcp transport's staging hook for KV in GPU memory.
#pragma once

#include "kv_transfer/kv_region.h"

namespace baton {

class CudaDeviceCopier : public DeviceCopier {
 public:
  explicit CudaDeviceCopier(int device_id) : device_id_(device_id) {}
  Status to_host(void* host_dst, const void* device_src, size_t num_bytes) override;
  Status to_device(void* device_dst, const void* host_src, size_t num_bytes) override;

 private:
  int device_id_;
};

}  // namespace baton

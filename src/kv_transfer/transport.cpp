#include "kv_transfer/transport.h"

namespace baton {

Status check_region_caps(const Transport& transport, const KvRegionDesc& region) {
  const TransportCaps caps = transport.caps();
  if (region.memory == MemoryKind::kHost && !caps.host_memory) {
    return failed_precondition("transport '{}' cannot move KV in host memory", transport.name());
  }
  if (region.memory == MemoryKind::kDevice && !caps.device_memory) {
    return failed_precondition("transport '{}' cannot move KV in device memory", transport.name());
  }
  return Status::ok();
}

}  // namespace baton

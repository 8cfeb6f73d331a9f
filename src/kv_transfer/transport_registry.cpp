#include "kv_transfer/transport_registry.h"

#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "kv_transfer/local_transport.h"
#include "kv_transfer/shm_transport.h"
#include "kv_transfer/tcp_transport.h"
#include "kv_transfer/ucx_transport.h"

namespace baton {

namespace {
// Filled by explicit registrations at start; read-only afterwards.
std::map<std::string, TransportFactory>& extra_factories() {
  static std::map<std::string, TransportFactory> factories;
  return factories;
}
DeviceCopierFactory& device_copier_factory() {
  static DeviceCopierFactory factory;
  return factory;
}
}  // namespace

void register_device_copier_factory(DeviceCopierFactory factory) { device_copier_factory() = std::move(factory); }

Result<std::unique_ptr<DeviceCopier>> make_device_copier(int device_id) {
  if (!device_copier_factory()) {
    return unimplemented("no device copier: staging KV from device memory needs a CUDA build of baton");
  }
  return device_copier_factory()(device_id);
}

void register_transport_factory(const std::string& name, TransportFactory factory) {
  extra_factories()[name] = std::move(factory);
}

std::vector<std::string> transport_names() {
  std::vector<std::string> names = {"local", "shm", "tcp", "ucx"};
  for (const auto& [name, factory] : extra_factories()) names.push_back(name);
  return names;
}

Result<std::unique_ptr<Transport>> make_transport(const std::string& name) {
  if (name == "local") return std::unique_ptr<Transport>(std::make_unique<LocalTransport>());
  if (name == "shm") return std::unique_ptr<Transport>(std::make_unique<ShmTransport>());
  if (name == "tcp") return std::unique_ptr<Transport>(std::make_unique<TcpTransport>());
  if (name == "ucx") return std::unique_ptr<Transport>(std::make_unique<UcxTransport>());
  auto it = extra_factories().find(name);
  if (it != extra_factories().end()) return it->second();
  if (name == "cuda_ipc") {
    return unimplemented("KV transport 'cuda_ipc' needs a CUDA build of baton");
  }
  return invalid_argument("unknown KV transport '{}' (available: {})", name, fmt::join(transport_names(), ", "));
}

}  // namespace baton

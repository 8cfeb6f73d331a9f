// Transports by name. local, shm and tcp are built in; optional ones (the
// CUDA build's cuda_ipc) register a factory from their own library.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv_transfer/transport.h"

namespace baton {

using TransportFactory = std::function<Result<std::unique_ptr<Transport>>()>;

// Called from a static object in the registering library.
void register_transport_factory(const std::string& name, TransportFactory factory);

Result<std::unique_ptr<Transport>> make_transport(const std::string& name);
std::vector<std::string> transport_names();

}  // namespace baton

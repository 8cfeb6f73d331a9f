// Transports by name. local, shm, tcp and ucx are built in; optional ones (the
// CUDA build's cuda_ipc) are registered explicitly by the program that links
// them, at start (cli/main.cpp calls register_cuda_kv_transfer()).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv_transfer/transport.h"

namespace baton {

using TransportFactory = std::function<Result<std::unique_ptr<Transport>>()>;
// Makes the staging copier for KV in the memory of one device (CUDA ordinal).
using DeviceCopierFactory = std::function<Result<std::unique_ptr<DeviceCopier>>(int device_id)>;

// Called at start, before any make_transport / make_device_copier.
void register_transport_factory(const std::string& name, TransportFactory factory);
void register_device_copier_factory(DeviceCopierFactory factory);

// The copier that transports staging through the host (tcp) need for a KV
// cache in device memory; unimplemented in a build without device support.
Result<std::unique_ptr<DeviceCopier>> make_device_copier(int device_id);

Result<std::unique_ptr<Transport>> make_transport(const std::string& name);
std::vector<std::string> transport_names();

}  // namespace baton

// Which process serves a peer's KV, so that a same-host transport (shm, ucx
// over shared memory) can tell a peer that died from one that is slow: the
// serving side adds its hostname, pid and PID namespace to its descriptor's
// transport_params; a reader checks the pid only when it means the same
// process here.
#pragma once

#include <cstdint>
#include <string>

#include "common/json.h"

namespace baton {

std::string this_hostname();

// Adds "hostname", "pid" and "pid_namespace" of this process to `params`.
void describe_this_process(Json& params);

// The peer's pid when it is checkable from here (same host, same PID
// namespace), else 0.
int64_t checkable_peer_pid(const Json& params);

// Whether the process `pid` (> 0) has exited; false for pid <= 0.
bool peer_process_exited(int64_t pid);

}  // namespace baton

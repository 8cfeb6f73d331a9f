// What UCX can use on this host (its transports and devices, through UCT),
// sorted into the classes a deployment may require of its KV path
// (`--kv-require rdma|sm|tcp`): a deployment that needs RDMA refuses to
// start, naming what it found, instead of falling back to something many
// times slower.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace baton {

struct UcxResource {
  std::string transport;  // UCT transport: rc_mlx5, dc_mlx5, tcp, posix, cma, cuda_ipc, ...
  std::string device;     // mlx5_0:1, eth0, memory, ...
  std::string kv_class;   // rdma, sm, tcp, gpu, self, other
};

// The class of a UCT transport name.
std::string ucx_transport_class(const std::string& transport);

// Every transport/device UCX finds on this host.
Result<std::vector<UcxResource>> list_ucx_resources();

// Whether UCX_TLS-style `tls` ("tcp", "sm", "^cma", "rc,ud"; empty or "all":
// everything) lets UCX use `transport`. Aliases: sm/shm/mm, rc, dc, ud, ib, cuda.
bool ucx_tls_allows(const std::string& tls, const std::string& transport);

inline constexpr const char* kKvRequireClasses = "rdma, sm, tcp";

struct KvRequirement {
  // For ucx: the UCX_TLS that confines UCX to the required class (plus
  // the GPU copy transports found), so that it cannot fall back; empty
  // when UCX_TLS is already set or the transport is not ucx.
  std::string ucx_tls;
};

// Checks that `kv_transport` moves KV over `require` (rdma, sm or tcp):
// FAILED_PRECONDITION naming what was found otherwise. `ucx_tls_env` is
// the UCX_TLS in force (empty: unset); `resources` what UCX found.
Result<KvRequirement> check_kv_require(const std::string& kv_transport, const std::string& require,
                                       const std::string& ucx_tls_env, const std::vector<UcxResource>& resources);

}  // namespace baton

// `baton serve --role prefill|decode`: the PD flags. They fill
// instance::PdOptions; the instance layer builds the KV connector from them
// (instance/kv_connector_setup.h). docs/pd.md describes the protocol.
#pragma once

#include <CLI/CLI.hpp>

#include "instance/kv_connector_setup.h"

namespace baton::cli {

using PdFlags = instance::PdOptions;

// Adds --role, --kv-transport, --kv-require, --kv-port, --kv-host, --kv-secret-file,
// --kv-max-connections, --kv-agent-workers, --kv-idle-timeout-ms,
// --kv-frame-timeout-ms, --kv-lease-ms, --kv-load-failure-policy,
// --kv-checksum, --discovery, --advertise-url, --leave-grace-s,
// --role-switching, --role-drain-timeout-s (and the hidden --kv-fault).
void add_pd_flags(CLI::App& app, PdFlags& flags);

}  // namespace baton::cli

#include "cli/pd_serve.h"

namespace baton::cli {

void add_pd_flags(CLI::App& app, PdFlags& f) {
  app.add_option("--role", f.role, "agg (everything), prefill or decode (PD disaggregation)")
      ->check(CLI::IsMember({"agg", "prefill", "decode"}))
      ->capture_default_str();
  app.add_option("--kv-transport", f.kv_transport, "KV transfer between PD instances: local, shm, tcp, ucx, cuda_ipc")
      ->capture_default_str();
  app.add_option("--kv-require", f.kv_require,
                 "Refuse to start unless KV moves over this class of link: rdma, sm or tcp (ucx: UCX is "
                 "then confined to it, no silent fallback)")
      ->check(CLI::IsMember({"rdma", "sm", "tcp"}));
  app.add_option("--kv-port", f.kv_port, "Prefill: port of the KV agent (0 picks a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--kv-host", f.kv_host,
                 "Prefill: the KV agent's address (default: --host with a KV secret, else 127.0.0.1; a "
                 "non-loopback address needs a secret)");
  app.add_option("--kv-secret-file", f.kv_secret_file,
                 "File holding the KV secret (mode 600) that PD peers authenticate with and sign "
                 "kv_transfer_params with (else $BATON_KV_SECRET; without one, KV stays on loopback)");
  app.add_option("--kv-max-connections", f.kv_max_connections, "Prefill: KV agent connections open at once")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--kv-agent-workers", f.kv_agent_workers, "Prefill: KV agent threads answering requests")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--kv-idle-timeout-ms", f.kv_idle_timeout_ms,
                 "Prefill: the KV agent closes a connection idle this long")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kv-frame-timeout-ms", f.kv_frame_timeout_ms,
                 "Prefill: a KV request frame (or the handshake) must arrive whole within this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kv-lease-ms", f.kv_lease_ms,
                 "Prefill: how long a finished prompt's KV blocks wait for a decode instance")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kv-load-failure-policy", f.kv_load_failure_policy,
                 "Decode: when a KV pull fails, fail the request or recompute the prompt locally")
      ->check(CLI::IsMember({"fail", "recompute"}))
      ->capture_default_str();
  app.add_flag("--kv-checksum", f.kv_checksum, "Decode: verify every pulled KV block (xxHash64)");
  app.add_option("--discovery", f.discovery,
                 "etcd://HOST:PORT: register this instance (role, URL, model); on SIGTERM leave first")
      ->capture_default_str();
  app.add_option("--advertise-url", f.advertise_url, "URL routers reach this instance at (default: its own)");
  app.add_option("--leave-grace-s", f.leave_grace_s,
                 "On SIGTERM with --discovery: keep serving this long after leaving, so routers see it")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_flag("--role-switching", f.role_switching,
               "Let the role change at run time without a restart (POST /v1/admin/role; docs/pd.md)");
  app.add_option("--role-drain-timeout-s", f.role_drain_timeout_s,
                 "A role switch's drain limit unless the request gives one (then it fails, the role unchanged)")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  app.add_option("--kv-fault", f.kv_fault, "Tests only: inject fail|corrupt|drop|delay_ms=N into KV reads")->group("");
}

}  // namespace baton::cli

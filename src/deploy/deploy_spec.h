// A deployment described in one YAML file (`baton up SPEC.yaml`):
//
//   name: pd-1p1d
//   model: /models/llama      # omit for the embedded default model
//   device: cpu               # or cuda: one process per GPU, pinned
//   mode: pd                  # or agg, or adaptive (below)
//   kv_transport: shm         # pd only: local, shm, tcp, cuda_ipc
//   engine_args: {max-num-seqs: 64}      # every instance
//   prefill: {replicas: 1, engine_args: {max-num-batched-tokens: 8192}}
//   decode: {replicas: 1, tensor_parallel_size: 2}   # per role; else the spec's
//   tensor_parallel_size: 1   # ranks per instance (each takes that many GPUs;
//                             # engine_args' tensor-parallel-size is read too)
//   enable_expert_parallel: false   # MoE experts spread whole over an instance's
//                             # ranks (per role too, next to tensor_parallel_size)
//   kv_cache_dtype: fp8       # auto | fp8 | fp8_e4m3, every role's unless its
//                             # group sets one (prefill: {kv_cache_dtype: fp8});
//                             # engine_args' kv-cache-dtype is read too. pd and
//                             # adaptive refuse a prefill and decode that differ
//                             # (their KV blocks would not be the same bytes)
//   replicas: 4               # agg only (or agg: {replicas: 4, engine_args: ...});
//                             # at most 4096 a role group, tensor_parallel_size
//                             # at most 1024
//   router: {port: 8000, policy: round_robin,
//            disagg: conditional,            # pd/adaptive: always | conditional | auto
//            tokenizer: /models/llama}       # the router's --tokenizer (kv_aware, disagg)
//   base_port: 8100           # instances listen on base_port, base_port+1, ...
//                             # (and pd's KV ports base_kv_port, +1, ...), all
//                             # within 1..65535
//   gpus: [0, 1, 2, 3]        # cuda: the GPUs to use, in order (default 0..N-1)
//   discovery: etcd://127.0.0.1:2379    # optional; else the static list
//   restart: true             # restart an instance that dies
//   shutdown_grace_s: 5       # on stop, in-flight requests get this long (each
//                             # instance's --shutdown-grace-s), then are aborted
//
// mode: adaptive is pd whose roles follow the load (docs/routing.md "Roles
// that follow the load"): prefill/decode give the N instances' first roles,
// each instance runs with --role-switching (with discovery it re-registers
// under each new role), and the router with
// --role-control and the settings of `role_control` (the router's flags
// --role-margin, --role-hold-s, ... without the prefix):
//   mode: adaptive
//   prefill: 1
//   decode: 3
//   role_control: {margin: 2, hold_s: 10, cooldown_s: 30, kv_usage_weight: 4,
//                  interval_s: 0.5, drain_timeout_s: 60}
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace baton::deploy {

enum class InstanceRole { kAgg, kPrefill, kDecode };
const char* role_name(InstanceRole role);  // "agg", "prefill", "decode"

struct RoleGroup {
  int replicas = 0;
  int tensor_parallel_size = 0;                    // ranks per instance; 0: the spec's
  std::optional<bool> enable_expert_parallel;      // unset: the spec's
  std::string kv_cache_dtype;                      // --kv-cache-dtype; "": the spec's
  std::map<std::string, std::string> engine_args;  // flag name (no dashes) -> value ("" = bare flag)
};

struct DeploySpec {
  std::string name = "baton";
  std::string model;  // empty = the embedded default model
  std::string device = "cpu";
  std::string mode = "agg";  // agg | pd
  std::string kv_transport = "shm";
  std::map<std::string, std::string> engine_args;
  int tensor_parallel_size = 0;                // every role's unless its group sets one; 0: unset
  std::optional<bool> enable_expert_parallel;  // every role's unless its group sets it
  std::string kv_cache_dtype;                  // every role's unless its group sets one; "": unset
  RoleGroup agg, prefill, decode;
  int router_port = 8000;
  std::string router_policy = "round_robin";
  std::string router_disagg;     // "" = the router's default (always)
  std::string router_tokenizer;  // "" = none
  // adaptive: the router's role controller, flag name (no --role- prefix) -> value.
  std::map<std::string, std::string> role_control;
  std::string host = "127.0.0.1";
  int base_port = 8100;
  int base_kv_port = 9100;
  std::vector<int> gpus;
  std::string discovery;  // "" or etcd://HOST:PORT
  bool restart = true;
  double health_timeout_s = 300.0;
  double shutdown_grace_s = 5.0;  // each instance's --shutdown-grace-s (Supervisor::stop)

  static Result<DeploySpec> parse_yaml(const std::string& text);
  static Result<DeploySpec> load(const std::string& path);

  // The ranks an instance of `group` runs: the group's tensor_parallel_size,
  // else the spec's, else a tensor-parallel-size engine argument (the
  // group's, then the spec's), else 1.
  int tensor_parallel_size_of(const RoleGroup& group) const;
  // Whether an instance of `group` spreads its experts over its ranks: the
  // group's enable_expert_parallel, else the spec's, else whether an
  // enable-expert-parallel engine argument is given (the group's or the spec's).
  bool expert_parallel_of(const RoleGroup& group) const;
  // The KV cache dtype of `group`'s instances, named as the flag takes it
  // (fp8_e4m3 reads as fp8): the group's kv_cache_dtype, else the spec's,
  // else a kv-cache-dtype engine argument (the group's, then the spec's),
  // else "auto".
  std::string kv_cache_dtype_of(const RoleGroup& group) const;
};

// One process of the deployment, fully resolved.
struct InstanceSpec {
  std::string name;  // e.g. "prefill-0"
  InstanceRole role = InstanceRole::kAgg;
  int port = 0;
  int kv_port = 0;
  int tensor_parallel_size = 1;         // its ranks (--tensor-parallel-size)
  bool enable_expert_parallel = false;  // --enable-expert-parallel
  int gpu = -1;                         // its first GPU, -1 = none
  std::vector<int> gpus;                // cuda: its tensor_parallel_size GPUs (gpus[0] == gpu)
  std::vector<std::string> args;        // argv after the binary
  std::string host;                     // where it is reached when not the spec's host (a Slurm node)

  std::string url(const std::string& spec_host) const;  // on `host` when set, else on spec_host
  std::string cuda_visible_devices() const;             // "2,3"; "" without GPUs
};

// Resolves ports, GPUs (tensor_parallel_size per instance) and command
// lines for every instance.
Result<std::vector<InstanceSpec>> plan_instances(const DeploySpec& spec);

// The value after `flag` in an instance's `args` set to `value` (appended
// when absent): how a launcher adapts a planned command line.
void set_flag(std::vector<std::string>* args, const std::string& flag, const std::string& value);

// The router's flags that the spec decides (--mode, --policy, --disagg,
// --tokenizer, role control), for every launcher.
std::vector<std::string> router_flags(const DeploySpec& spec);

// The router's command line given the instances.
std::vector<std::string> router_args(const DeploySpec& spec, const std::vector<InstanceSpec>& instances);

}  // namespace baton::deploy

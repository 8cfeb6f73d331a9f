#include "deploy/slurm_launcher.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <regex>
#include <sstream>

#include <fmt/format.h>

namespace baton::deploy {

namespace {

std::string env_value(const std::map<std::string, std::string>& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? "" : it->second;
}

// The node's IPv4 address, as the KV agent binds an address, not a name.
Result<std::string> resolve_ipv4(const std::string& node) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(node.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return unavailable("cannot resolve the Slurm node '{}': {}", node, gai_strerror(rc));
  }
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr, text, sizeof(text));
  freeaddrinfo(found);
  return std::string(text);
}

// `name` on $PATH, or "" (ChildProcess executes a path, not a name).
std::string find_on_path(const std::map<std::string, std::string>& env, const std::string& name) {
  std::istringstream dirs(env_value(env, "PATH"));
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const std::string path = dir + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

bool moves_kv_between_hosts(const std::string& transport) { return transport == "tcp"; }

// Runs a command line (names and ids the launcher checked), its output and exit status.
Result<std::string> run_command(const std::string& command) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return unavailable("cannot run '{}'", command);
  std::string out;
  std::array<char, 1024> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return unavailable("'{}' failed: {}", command, out);
  return out;
}

std::string step_name(const InstanceSpec& instance) { return "baton-" + instance.name; }

}  // namespace

Result<SlurmAllocation> current_slurm_allocation(const std::map<std::string, std::string>& env) {
  SlurmAllocation a;
  a.job_id = env_value(env, "SLURM_JOB_ID");
  if (a.job_id.empty()) {
    return failed_precondition(
        "--launcher slurm runs inside a Slurm allocation, and SLURM_JOB_ID is not set: run it under salloc "
        "(salloc -N2 baton up --launcher slurm SPEC) or in an sbatch script");
  }
  static const std::regex kJobId("[0-9]+(_[0-9]+)?");
  if (!std::regex_match(a.job_id, kJobId)) return invalid_argument("SLURM_JOB_ID '{}' is not a job id", a.job_id);
  const std::string list = env_value(env, "SLURM_JOB_NODELIST");
  // Only what a node list holds reaches the shell: names, ranges, commas.
  static const std::regex kNodeList("[A-Za-z0-9._\\-\\[\\],]+");
  if (list.empty() || !std::regex_match(list, kNodeList)) {
    return invalid_argument("SLURM_JOB_NODELIST '{}' is not a node list", list);
  }
  BATON_ASSIGN_OR_RETURN(std::string out, run_command("scontrol show hostnames '" + list + "'"));
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) a.nodes.push_back(line);
  }
  if (a.nodes.empty()) return unavailable("the allocation {} lists no node", a.job_id);
  static const std::regex kNodeAddr("NodeAddr=([^ \\n]+)");
  for (const std::string& node : a.nodes) {
    BATON_ASSIGN_OR_RETURN(std::string info, run_command("scontrol show node -o '" + node + "'"));
    std::smatch m;
    a.addresses.push_back(std::regex_search(info, m, kNodeAddr) ? m[1].str() : node);
  }
  a.srun = find_on_path(env, "srun");
  if (a.srun.empty()) return not_found("srun is not on PATH ({})", env_value(env, "PATH"));
  return a;
}

SlurmLauncher::SlurmLauncher(SlurmAllocation allocation, std::vector<std::string> srun_args, std::string baton_binary)
    : allocation_(std::move(allocation)), srun_args_(std::move(srun_args)), baton_binary_(std::move(baton_binary)) {}

Status SlurmLauncher::check(const DeploySpec& spec, bool have_kv_secret) const {
  if (spec.discovery.empty()) {
    return invalid_argument(
        "--launcher slurm needs 'discovery: etcd://HOST:PORT' in the spec (an etcd the allocation's nodes reach): "
        "instances register there and the router finds them through it");
  }
  if (spec.mode == "agg") return Status::ok();
  size_t num_instances = static_cast<size_t>(spec.prefill.replicas + spec.decode.replicas);
  if (std::min(num_instances, allocation_.nodes.size()) <= 1) return Status::ok();  // one node: KV stays local
  if (!moves_kv_between_hosts(spec.kv_transport)) {
    return invalid_argument(
        "kv_transport {} moves KV between processes of one host, and the allocation spreads the instances over {} "
        "nodes: use tcp",
        spec.kv_transport, allocation_.nodes.size());
  }
  if (!have_kv_secret) {
    return invalid_argument(
        "PD over {} nodes moves KV over the network, which needs a KV secret: set BATON_KV_SECRET (srun passes it "
        "to every step) or kv-secret-file in the spec's engine_args (a file on a shared filesystem)",
        allocation_.nodes.size());
  }
  return Status::ok();
}

Status SlurmLauncher::place(const DeploySpec& spec, InstanceSpec* inst, ProcessOptions* process) {
  const size_t index = next_node_++ % allocation_.nodes.size();
  const std::string& node = allocation_.nodes[index];
  const std::string& address = allocation_.addresses[index];
  const size_t num_instances = spec.mode != "agg" ? static_cast<size_t>(spec.prefill.replicas + spec.decode.replicas)
                                                  : static_cast<size_t>(spec.agg.replicas);
  const bool spread = std::min(num_instances, allocation_.nodes.size()) > 1;
  std::vector<std::string> args = inst->args;
  set_flag(&args, "--host", "0.0.0.0");
  set_flag(&args, "--advertise-url", fmt::format("http://{}:{}", address, inst->port));
  if (inst->role != InstanceRole::kAgg && spread) {
    BATON_ASSIGN_OR_RETURN(std::string ip, resolve_ipv4(address));
    set_flag(&args, "--kv-host", ip);
  }
  std::vector<std::string> srun = {fmt::format("--jobid={}", allocation_.job_id),
                                   "--nodes=1",
                                   "--ntasks=1",
                                   "--nodelist=" + node,
                                   "--exact",  // the step takes only what it asks for: steps run side by side
                                   "--kill-on-bad-exit=1",
                                   "--job-name=" + step_name(*inst)};
  // Slurm sets CUDA_VISIBLE_DEVICES for the step: one GPU per rank.
  if (!inst->gpus.empty()) srun.push_back(fmt::format("--gpus-per-task={}", inst->gpus.size()));
  srun.insert(srun.end(), srun_args_.begin(), srun_args_.end());
  srun.push_back(baton_binary_);
  srun.insert(srun.end(), args.begin(), args.end());
  process->program = allocation_.srun;
  process->args = std::move(srun);
  process->env.erase(std::remove_if(process->env.begin(), process->env.end(),
                                    [](const auto& kv) { return kv.first == "CUDA_VISIBLE_DEVICES"; }),
                     process->env.end());
  inst->host = address;
  inst->args = std::move(args);
  return Status::ok();
}

}  // namespace baton::deploy

namespace baton::deploy {

Status SlurmLauncher::ask_to_stop(const InstanceSpec& instance) const {
  BATON_ASSIGN_OR_RETURN(std::string steps,
                         run_command(fmt::format("squeue -h -s -j {} -o '%i %j'", allocation_.job_id)));
  std::istringstream lines(steps);
  for (std::string id, name; lines >> id >> name;) {
    if (name == step_name(instance)) return run_command("scancel --signal=TERM " + id).status();
  }
  return not_found("no step named {} in allocation {}", step_name(instance), allocation_.job_id);
}

}  // namespace baton::deploy

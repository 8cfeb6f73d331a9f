// A one-node Slurm cluster for a test: munged, slurmctld and slurmd (Debian's
// slurm-wlm and munge, installed by scripts/install-deps.sh) with their own
// key, config, state, sockets and ports in a temp folder, stopped at the end.
// Every Slurm command the test runs takes env() (SLURM_CONF names the config).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/test_process.h"
#include "support/wait.h"

namespace baton::testing {

// A TCP port free when asked (the kernel's pick for port 0).
inline int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

class SlurmCluster {
 public:
  SlurmCluster() {
    dir_ = std::filesystem::path(test_tmp_dir()) / "slurm";
    std::filesystem::create_directories(dir_ / "state");
    std::filesystem::create_directories(dir_ / "spool");
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    node_ = std::string(host).substr(0, std::string(host).find('.'));
    {
      std::ofstream key(dir_ / "munge.key", std::ios::binary);
      std::random_device rd;
      for (int i = 0; i < 1024; ++i) key.put(static_cast<char>(rd()));
    }
    std::filesystem::permissions(dir_ / "munge.key", std::filesystem::perms::owner_read);
    const std::string d = dir_.string();
    munged_ = TestProcess::spawn(
        {"--foreground", "--force", "--key-file=" + d + "/munge.key", "--socket=" + d + "/munge.sock",
         "--pid-file=" + d + "/munged.pid", "--log-file=" + d + "/munged.log", "--seed-file=" + d + "/munge.seed"},
        "/usr/sbin/munged");
    const std::string user = ::geteuid() == 0 ? "root" : std::string(::getenv("USER") ? ::getenv("USER") : "root");
    std::ofstream(dir_ / "slurm.conf")
        << "ClusterName=batontest\n"
        << "SlurmctldHost=" << node_ << "(127.0.0.1)\n"
        << "SlurmctldPort=" << free_tcp_port() << "\nSlurmdPort=" << free_tcp_port() << "\n"
        << "AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket=" << d << "/munge.sock\n"
        << "SlurmUser=" << user << "\nSlurmdUser=" << user << "\n"
        << "StateSaveLocation=" << d << "/state\nSlurmdSpoolDir=" << d << "/spool\n"
        << "SlurmctldPidFile=" << d << "/slurmctld.pid\nSlurmdPidFile=" << d << "/slurmd.pid\n"
        << "SlurmctldLogFile=" << d << "/slurmctld.log\nSlurmdLogFile=" << d
        << "/slurmd.log\n"
        // No cgroups in a CI container: processes are tracked by their parent ids.
        << "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
        << "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
        << "JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n"
        << "MpiDefault=none\nReturnToService=2\n"
        << "NodeName=" << node_ << " NodeAddr=127.0.0.1 CPUs=" << std::thread::hardware_concurrency()
        << " State=UNKNOWN\n"
        << "PartitionName=test Nodes=" << node_ << " Default=YES MaxTime=INFINITE State=UP\n";
    env_ = {{"SLURM_CONF", d + "/slurm.conf"}};
    if (!wait_until([&] { return std::filesystem::exists(dir_ / "munge.sock"); }, 10.0, 20)) {
      error_ = "munged did not start: " + munged_->log();
      return;
    }
    slurmctld_ = TestProcess::spawn({"-D", "-i", "-f", d + "/slurm.conf"}, "/usr/sbin/slurmctld", env_);
    slurmd_ = TestProcess::spawn({"-D", "-N", node_, "-f", d + "/slurm.conf"}, "/usr/sbin/slurmd", env_);
    // Ready when the node is idle.
    if (!wait_until([&] { return run("sinfo -h -o %T").find("idle") != std::string::npos; }, 30.0, 200)) {
      error_ = "the Slurm node never became idle: " + run("sinfo") + read_whole_file(d + "/slurmctld.log");
    }
  }
  ~SlurmCluster() {
    if (!job_id_.empty()) run("scancel " + job_id_);
    slurmd_.reset();
    slurmctld_.reset();
    munged_.reset();
  }

  bool ready() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& node() const { return node_; }
  const std::vector<std::pair<std::string, std::string>>& env() const { return env_; }

  // A shell command line with the cluster's environment; what it printed.
  std::string run(const std::string& command) const {
    std::string out;
    run_shell("SLURM_CONF=" + (dir_ / "slurm.conf").string() + " " + command, &out, 60.0);
    return out;
  }
  // An allocation of `num_tasks` tasks on the node (salloc --no-shell): its job id, "" on failure.
  std::string allocate(int num_tasks) {
    const std::string out = run("salloc --no-shell -N1 -n" + std::to_string(num_tasks));
    const size_t at = out.find("Granted job allocation ");
    if (at == std::string::npos) return "";
    job_id_ = out.substr(at + 23, out.find_first_not_of("0123456789", at + 23) - (at + 23));
    return job_id_;
  }

 private:
  std::filesystem::path dir_;
  std::string node_;
  std::string error_;
  std::string job_id_;
  std::vector<std::pair<std::string, std::string>> env_;
  std::unique_ptr<TestProcess> munged_, slurmctld_, slurmd_;
};

}  // namespace baton::testing

#include "kv_transfer/peer_process.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace baton {

namespace {
// Identifies this process's PID namespace, so that a peer's pid is only
// checked when it means the same process here.
std::string pid_namespace() {
  char buf[128] = {};
  const ssize_t n = ::readlink("/proc/self/ns/pid", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}
}  // namespace

std::string this_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

void describe_this_process(Json& params) {
  params["hostname"] = this_hostname();
  params["pid"] = static_cast<int64_t>(::getpid());
  params["pid_namespace"] = pid_namespace();
}

int64_t checkable_peer_pid(const Json& params) {
  if (!params.is_object()) return 0;
  auto host = params.find("hostname");
  auto ns = params.find("pid_namespace");
  auto pid = params.find("pid");
  if (host == params.end() || !host->is_string() || *host != this_hostname()) return 0;
  if (ns == params.end() || !ns->is_string() || *ns != pid_namespace()) return 0;
  if (pid == params.end() || !pid->is_number_integer()) return 0;
  return pid->get<int64_t>();
}

bool peer_process_exited(int64_t pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM;
}

}  // namespace baton

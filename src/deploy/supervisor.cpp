#include "deploy/supervisor.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "common/clock.h"
#include "common/log.h"
#include "deploy/kv_segments.h"
#include "http/http_client.h"

namespace baton::deploy {

Supervisor::Supervisor(DeploySpec spec, SupervisorOptions options)
    : spec_(std::move(spec)), options_(std::move(options)) {}

Supervisor::~Supervisor() { stop(); }

void Supervisor::emit(const std::string& message) {
  if (options_.on_event) {
    options_.on_event(message);
  } else {
    BATON_LOG_INFO("{}", message);
  }
}

void Supervisor::ask_to_stop(Managed& m) {
  if (options_.ask_to_stop && m.spec.name != "router" && m.child.running()) {
    options_.ask_to_stop(m.spec);
  } else {
    m.child.signal(SIGTERM);
  }
}

Status Supervisor::launch(Managed* m) {
  auto child = ChildProcess::spawn(m->process);
  if (!child.is_ok()) return child.status().with_context("starting " + m->spec.name);
  m->child = std::move(child).value();
  m->exit_reported = false;
  return Status::ok();
}

Status Supervisor::wait_healthy(Managed* m, double timeout_s) {
  const std::string url = m->spec.url(spec_.host) + "/health";
  Stopwatch sw;
  while (sw.elapsed_s() < timeout_s) {
    if (!m->child.running()) {
      return unavailable("{} exited ({}) before it was healthy; see {}", m->spec.name, m->child.exit_description(),
                         m->process.log_path);
    }
    auto r = http::fetch(url, "GET", {}, 2.0);
    if (r.is_ok() && r->status == 200) return Status::ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return deadline_exceeded("{} not healthy after {:.0f} s; see {}", m->spec.name, timeout_s, m->process.log_path);
}

Status Supervisor::start() {
  BATON_ASSIGN_OR_RETURN(instances_, plan_instances(spec_));
  std::error_code ec;
  std::filesystem::create_directories(options_.run_dir, ec);
  if (ec) return unavailable("cannot create run folder '{}': {}", options_.run_dir, ec.message());
  for (auto& inst : instances_) {
    Managed m;
    m.process.program = options_.baton_binary;
    m.process.args = inst.args;
    m.process.log_path = options_.run_dir + "/" + inst.name + ".log";
    if (!inst.gpus.empty()) m.process.env.emplace_back("CUDA_VISIBLE_DEVICES", inst.cuda_visible_devices());
    m.process.env.emplace_back("NCCL_NVLS_ENABLE", "0");
    if (options_.place) BATON_RETURN_IF_ERROR(options_.place(&inst, &m.process));
    m.spec = inst;
    managed_.push_back(std::move(m));
  }
  for (auto& m : managed_) {
    BATON_RETURN_IF_ERROR(launch(&m));
    emit(fmt::format("started {} (pid {}) on {}", m.spec.name, m.child.pid(), m.spec.url(spec_.host)));
  }
  for (auto& m : managed_) {
    BATON_RETURN_IF_ERROR(wait_healthy(&m, spec_.health_timeout_s));
    emit(fmt::format("{} healthy", m.spec.name));
  }
  Managed router;
  router.spec.name = "router";
  router.spec.port = spec_.router_port;
  router.process.program = options_.baton_binary;
  router.process.args = router_args(spec_, instances_);
  router.process.log_path = options_.run_dir + "/router.log";
  managed_.push_back(std::move(router));
  BATON_RETURN_IF_ERROR(launch(&managed_.back()));
  BATON_RETURN_IF_ERROR(wait_healthy(&managed_.back(), 60.0));
  emit(fmt::format("router healthy: {}", endpoint()));
  return Status::ok();
}

void Supervisor::remove_leftovers(const Managed& m, pid_t pid) {
  if (pid <= 0) return;
  const int num_removed = remove_kv_segments_of(pid);
  if (num_removed > 0) {
    emit(fmt::format("removed {} shared-memory KV segment(s) that {} (pid {}) left", num_removed, m.spec.name, pid));
  }
}

Status Supervisor::poll() {
  for (auto& m : managed_) {
    if (m.child.running() || m.exit_reported) continue;
    m.exit_reported = true;
    bool is_router = m.spec.name == "router";
    emit(fmt::format("{} exited ({})", m.spec.name, m.child.exit_description()));
    remove_leftovers(m, m.child.pid());
    if (is_router) return unavailable("the router exited ({}); see {}", m.child.exit_description(), m.process.log_path);
    if (!spec_.restart) continue;
    if (m.num_restarts >= options_.max_restarts) {
      return unavailable("{} died {} times; giving up (see {})", m.spec.name, m.num_restarts + 1, m.process.log_path);
    }
    ++m.num_restarts;
    BATON_RETURN_IF_ERROR(launch(&m));
    emit(fmt::format("restarted {} (pid {}, restart {})", m.spec.name, m.child.pid(), m.num_restarts));
    Status healthy = wait_healthy(&m, spec_.health_timeout_s);
    emit(healthy.is_ok() ? fmt::format("{} healthy again", m.spec.name) : healthy.message());
  }
  return Status::ok();
}

Status Supervisor::run_until(const std::atomic<bool>& stop_requested) {
  while (!stop_requested.load()) {
    BATON_RETURN_IF_ERROR(poll());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return Status::ok();
}

double Supervisor::stop_grace_s() const { return spec_.shutdown_grace_s + kStopMarginS; }

void Supervisor::stop() { stop(stop_grace_s()); }

void Supervisor::stop(double grace_s) {
  if (managed_.empty()) return;
  Stopwatch sw;
  size_t num_running = 0;
  for (auto& m : managed_) num_running += m.child.running() ? 1 : 0;
  if (num_running > 0) emit(fmt::format("stopping {} process(es) (grace {:.0f} s)", num_running, grace_s));
  // The router first, so that no new request reaches an instance going away.
  for (auto& m : managed_) {
    if (m.spec.name != "router") continue;
    m.child.signal(SIGTERM);
    m.child.wait_exit(grace_s);
  }
  // Then every instance at once; they drain in parallel within what is left of the grace.
  for (auto& m : managed_) ask_to_stop(m);
  for (auto& m : managed_) {
    if (m.child.wait_exit(std::max(0.0, grace_s - sw.elapsed_s()))) continue;
    emit(fmt::format("{} still running after {:.0f} s: killing it (see {})", m.spec.name, grace_s, m.process.log_path));
  }
  for (auto& m : managed_) {
    const pid_t pid = m.child.pid();
    m.child.stop(0.0);  // SIGKILL to what is left; reaps it
    remove_leftovers(m, pid);
  }
  if (num_running > 0) emit(fmt::format("stopped in {:.1f} s", sw.elapsed_s()));
  managed_.clear();
}

std::string Supervisor::endpoint() const { return "http://" + spec_.host + ":" + std::to_string(spec_.router_port); }

pid_t Supervisor::pid_of(const std::string& name) const {
  for (const auto& m : managed_) {
    if (m.spec.name == name) return m.child.pid();
  }
  return -1;
}

int Supervisor::num_restarts(const std::string& name) const {
  for (const auto& m : managed_) {
    if (m.spec.name == name) return m.num_restarts;
  }
  return 0;
}

}  // namespace baton::deploy

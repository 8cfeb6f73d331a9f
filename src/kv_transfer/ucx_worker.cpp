#include "kv_transfer/ucx_worker.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace baton {

namespace {
// How long a wait sleeps before it looks at its deadline and cancel flag.
constexpr int kWaitSliceMs = 20;
}  // namespace

std::string ucx_error(ucs_status_t status) { return ucs_status_string(status); }

Result<std::unique_ptr<UcxWorker>> UcxWorker::create(const UcxWorkerOptions& options) {
  std::unique_ptr<UcxWorker> w(new UcxWorker());
  ucp_config_t* config = nullptr;
  ucs_status_t st = ucp_config_read(nullptr, nullptr, &config);
  if (st != UCS_OK) return unavailable("ucx: cannot read the UCX configuration: {}", ucx_error(st));
  if (!options.tls.empty()) st = ucp_config_modify(config, "TLS", options.tls.c_str());
  if (st != UCS_OK) {
    ucp_config_release(config);
    return invalid_argument("ucx: bad transport list '{}': {}", options.tls, ucx_error(st));
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES;
  params.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
  st = ucp_init(&params, config, &w->context_);
  ucp_config_release(config);
  if (st != UCS_OK) {
    w->context_ = nullptr;
    return unavailable("ucx: cannot start UCX (transports '{}'): {}", options.tls.empty() ? "default" : options.tls,
                       ucx_error(st));
  }
  ucp_context_attr_t attr{};
  attr.field_mask = UCP_ATTR_FIELD_MEMORY_TYPES;
  if (ucp_context_query(w->context_, &attr) == UCS_OK) {
    w->cuda_memory_ = (attr.memory_types & UCS_BIT(UCS_MEMORY_TYPE_CUDA)) != 0;
  }
  ucp_worker_params_t wparams{};
  wparams.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wparams.thread_mode = options.serialized ? UCS_THREAD_MODE_SERIALIZED : UCS_THREAD_MODE_SINGLE;
  st = ucp_worker_create(w->context_, &wparams, &w->worker_);
  if (st != UCS_OK) {
    w->worker_ = nullptr;
    return unavailable("ucx: cannot create a worker: {}", ucx_error(st));
  }
  st = ucp_worker_get_efd(w->worker_, &w->event_fd_);
  if (st != UCS_OK) return unavailable("ucx: worker has no event fd: {}", ucx_error(st));
  ucp_address_t* address = nullptr;
  size_t address_bytes = 0;
  st = ucp_worker_get_address(w->worker_, &address, &address_bytes);
  if (st != UCS_OK) return unavailable("ucx: worker has no address: {}", ucx_error(st));
  w->address_.assign(reinterpret_cast<const char*>(address), address_bytes);
  ucp_worker_release_address(w->worker_, address);
  return w;
}

UcxWorker::~UcxWorker() {
  if (worker_ != nullptr) ucp_worker_destroy(worker_);
  if (context_ != nullptr) ucp_cleanup(context_);
}

void UcxWorker::progress_or_sleep(int max_wait_ms) {
  if (ucp_worker_progress(worker_) != 0) return;
  const ucs_status_t st = ucp_worker_arm(worker_);
  if (st == UCS_ERR_BUSY) return;  // events came in meanwhile: progress again
  pollfd pfd{event_fd_, POLLIN, 0};
  ::poll(&pfd, 1, std::max(max_wait_ms, 0));
}

void UcxWorker::wake() { ucp_worker_signal(worker_); }

Status UcxWorker::progress_until(const std::function<bool()>& done, const ReadContext& ctx, const std::string& what,
                                 const std::function<bool()>& abandon) {
  while (!done()) {
    if (ctx.is_cancelled()) return aborted("ucx: {} cancelled", what);
    if (abandon && abandon()) return unavailable("ucx: {}: the peer is gone", what);
    const auto now = SteadyClock::now();
    if (now >= ctx.deadline) return deadline_exceeded("ucx: {} timed out", what);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.deadline - now).count();
    progress_or_sleep(static_cast<int>(std::clamp<int64_t>(left, 1, kWaitSliceMs)));
  }
  return Status::ok();
}

}  // namespace baton

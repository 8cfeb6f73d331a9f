// UcxWorker: one UCP context and worker (libucx), owned together, with the
// active-message features only (UCP_FEATURE_AM | UCP_FEATURE_WAKEUP): no
// UCP_FEATURE_RMA, so a UCX peer cannot issue remote gets or puts against
// this process at all (docs/security.md, "The ucx transport"). Waits sleep
// on the worker's event fd in short slices, so they honour a ReadContext's
// deadline and cancel flag without spinning a core.
#pragma once

#include <ucp/api/ucp.h>

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "kv_transfer/transport.h"

namespace baton {

struct UcxWorkerOptions {
  // UCX_TLS for this context ("tcp", "sm", "rc,dc"...); empty: UCX's own
  // choice (the UCX_TLS environment variable, else every transport found).
  std::string tls;
  // The worker is driven by one thread at a time (SINGLE) or by several
  // under the caller's lock (SERIALIZED).
  bool serialized = false;
};

class UcxWorker {
 public:
  static Result<std::unique_ptr<UcxWorker>> create(const UcxWorkerOptions& options);
  ~UcxWorker();
  UcxWorker(const UcxWorker&) = delete;
  UcxWorker& operator=(const UcxWorker&) = delete;

  ucp_worker_h worker() const { return worker_; }
  // The worker's address, as peers pass it to ucp_ep_create.
  const std::string& address() const { return address_; }
  // Whether this UCX build moves CUDA device memory itself (cuda_copy,
  // cuda_ipc, gdr_copy); else device KV is staged through host memory.
  bool supports_cuda_memory() const { return cuda_memory_; }

  // Progresses until done() is true, the context's deadline passes or it is
  // cancelled, or abandon() is true (then UNAVAILABLE with `what`).
  Status progress_until(const std::function<bool()>& done, const ReadContext& ctx, const std::string& what,
                        const std::function<bool()>& abandon = {});
  // Progresses what is ready, then sleeps on the event fd for at most
  // max_wait_ms (or until something arrives).
  void progress_or_sleep(int max_wait_ms);
  // Wakes a thread sleeping in progress_or_sleep (from any thread).
  void wake();

 private:
  UcxWorker() = default;
  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  int event_fd_ = -1;
  std::string address_;
  bool cuda_memory_ = false;
};

// UCX's status as text, for error messages.
std::string ucx_error(ucs_status_t status);

}  // namespace baton

#include "kv_transfer/transfer_handle.h"

#include <algorithm>
#include <chrono>

namespace baton {

TransferState TransferHandle::poll() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

Status TransferHandle::wait(int64_t timeout_ms) const {
  std::unique_lock<std::mutex> lock(mu_);
  constexpr int64_t kMaxWaitMs = 30ll * 24 * 3600 * 1000;
  const auto wait = std::chrono::milliseconds(std::clamp<int64_t>(timeout_ms, 0, kMaxWaitMs));
  const bool done = cv_.wait_for(lock, wait, [&] { return state_ != TransferState::kPending; });
  if (!done) {
    return deadline_exceeded("KV transfer {} (request '{}' from '{}') not done after {} ms", id_, request_id_,
                             peer_engine_id_, timeout_ms);
  }
  return status_;
}

Status TransferHandle::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == TransferState::kPending) {
    return failed_precondition("KV transfer {} is still running", id_);
  }
  return status_;
}

double TransferHandle::elapsed_s() const {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint end = state_ == TransferState::kPending ? SteadyClock::now() : finished_;
  return std::chrono::duration<double>(end - submitted_).count();
}

void TransferHandle::finish(Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != TransferState::kPending) return;
    state_ = status.is_ok() ? TransferState::kDone : TransferState::kFailed;
    status_ = std::move(status);
    finished_ = SteadyClock::now();
  }
  cv_.notify_all();
}

}  // namespace baton

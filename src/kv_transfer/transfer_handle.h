// TransferHandle: one in-flight batched read (Mooncake-style submit, then
// poll or wait). Shared between the caller and the engine's worker.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace baton {

enum class TransferState { kPending, kDone, kFailed };

class TransferHandle {
 public:
  TransferHandle(uint64_t id, std::string peer_engine_id, std::string request_id, int64_t num_blocks,
                 uint64_t num_bytes)
      : id_(id),
        peer_engine_id_(std::move(peer_engine_id)),
        request_id_(std::move(request_id)),
        num_blocks_(num_blocks),
        num_bytes_(num_bytes) {}

  uint64_t id() const { return id_; }
  const std::string& peer_engine_id() const { return peer_engine_id_; }
  const std::string& request_id() const { return request_id_; }
  int64_t num_blocks() const { return num_blocks_; }
  uint64_t num_bytes() const { return num_bytes_; }

  TransferState poll() const;
  // Waits up to timeout_ms for completion and returns the transfer's status;
  // DEADLINE_EXCEEDED if it is still running then (it keeps running; cancel()
  // to stop it).
  Status wait(int64_t timeout_ms) const;
  // The final status (OK, or why it failed); FAILED_PRECONDITION while pending.
  Status status() const;
  // Asks the transfer to stop; it then fails with ABORTED (unless done first).
  void cancel() { cancelled_ = true; }
  // Seconds from submission to completion (or until now while pending).
  double elapsed_s() const;

  // For the engine's worker.
  const std::atomic<bool>* cancel_flag() const { return &cancelled_; }
  void finish(Status status);

 private:
  const uint64_t id_;
  const std::string peer_engine_id_;
  const std::string request_id_;
  const int64_t num_blocks_;
  const uint64_t num_bytes_;
  const TimePoint submitted_ = SteadyClock::now();
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  TransferState state_ = TransferState::kPending;
  Status status_;
  TimePoint finished_;
};

}  // namespace baton

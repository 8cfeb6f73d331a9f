// EngineApi over an EngineCore: one engine thread loops over step(),
// sleeping on a condition variable when there is nothing to do. submit() and
// abort() may be called from any thread; they validate at once and queue a
// command for the engine thread. Output callbacks run on the engine thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "engine/async_engine_api.h"
#include "engine/engine_core.h"
#include "kv/kv_event_publisher.h"

namespace baton {

class AsyncEngine : public EngineApi {
 public:
  enum class ShutdownMode {
    kDrain,  // refuse new requests, finish the live ones, then stop
    kAbort,  // abort the live ones (their callbacks get kAbort), then stop
  };

  // Starts the engine thread. max_waiting_requests (0 = unbounded) caps the
  // requests submitted but not yet running; beyond it submit() returns
  // kResourceExhausted.
  explicit AsyncEngine(std::unique_ptr<EngineCore> core);
  ~AsyncEngine() override;  // shutdown(kAbort)

  Status submit(GenerationRequest request, OutputCallback on_output) override;
  void abort(const std::string& request_id) override;
  EngineStats stats() const override;
  int max_model_len() const override { return max_model_len_; }
  Status health() const override { return core_->health(); }
  // The backend the engine thread steps, for what is safe from another
  // thread: its health, or TensorParallelBackend::abort.
  Backend& backend() { return core_->backend(); }

  // Stops the engine thread (idempotent; waits for it). After it, submit()
  // returns kUnavailable.
  void shutdown(ShutdownMode mode = ShutdownMode::kAbort);

  // Live requests (submitted, no final output yet).
  int num_live_requests() const;

  // The engine's KV events and load, published after every step
  // (kv/kv_event_publisher.h; served at GET /v1/kv/events).
  const std::shared_ptr<KvEventPublisher>& kv_events() const { return kv_events_; }

 private:
  struct Command {
    enum class Kind { kSubmit, kAbort } kind;
    GenerationRequest request;  // kSubmit
    std::string request_id;     // kAbort
  };

  void loop();
  void deliver(RequestOutput out);
  // Engine thread: the step's KV events and the load after it.
  void publish_kv_events();

  std::unique_ptr<EngineCore> core_;
  const int max_model_len_;
  const int max_waiting_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Command> commands_;
  std::unordered_map<std::string, OutputCallback> callbacks_;  // live requests
  EngineStats stats_;                                          // snapshot after the last step
  int num_waiting_ = 0;                                        // core's waiting count after the last step
  bool stopping_ = false;
  ShutdownMode mode_ = ShutdownMode::kAbort;
  bool joined_ = false;
  std::shared_ptr<KvEventPublisher> kv_events_;
  double prefill_tokens_per_s_ = 0.0;  // moving average over steps with prompt work (engine thread)
  std::thread thread_;
};

}  // namespace baton

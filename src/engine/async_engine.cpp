#include "engine/async_engine.h"

#include <chrono>

#include "common/clock.h"
#include "common/log.h"

namespace baton {

namespace {
constexpr int kKvTimerPollMs = 20;  // PD: how often leases are checked while any is held
}  // namespace

AsyncEngine::AsyncEngine(std::unique_ptr<EngineCore> core)
    : core_(std::move(core)),
      max_model_len_(core_->max_model_len()),
      max_waiting_(core_->options().max_waiting_requests) {
  stats_ = core_->stats();
  kv_events_ = std::make_shared<KvEventPublisher>(core_->options().block_size);
  core_->enable_kv_events();
  if (KvConnector* c = core_->kv_connector()) {
    // PD events arrive on other threads: wake the engine thread to apply them.
    c->set_wakeup([this] {
      { std::lock_guard<std::mutex> lock(mu_); }
      cv_.notify_one();
    });
  }
  thread_ = std::thread([this] { loop(); });
}

AsyncEngine::~AsyncEngine() { shutdown(ShutdownMode::kAbort); }

Status AsyncEngine::submit(GenerationRequest request, OutputCallback on_output) {
  if (!on_output) return invalid_argument("submit needs an output callback");
  BATON_RETURN_IF_ERROR(core_->validate_params(request));
  if (Status h = core_->health(); !h.is_ok()) return unavailable("the engine has stopped: {}", h.message());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return unavailable("the engine is shutting down");
    if (callbacks_.count(request.request_id)) {
      return invalid_argument("request_id '{}' is already in use", request.request_id);
    }
    if (max_waiting_ > 0) {
      int num_queued = num_waiting_;
      for (const Command& c : commands_) num_queued += c.kind == Command::Kind::kSubmit;
      if (num_queued >= max_waiting_) {
        return resource_exhausted("the waiting queue is full ({} requests, --max-waiting-requests); retry later",
                                  max_waiting_);
      }
    }
    callbacks_.emplace(request.request_id, std::move(on_output));
    commands_.push_back({Command::Kind::kSubmit, std::move(request), {}});
  }
  cv_.notify_one();
  return Status::ok();
}

void AsyncEngine::abort(const std::string& request_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!callbacks_.count(request_id)) return;
    commands_.push_back({Command::Kind::kAbort, {}, request_id});
  }
  cv_.notify_one();
}

EngineStats AsyncEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

int AsyncEngine::num_live_requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(callbacks_.size());
}

void AsyncEngine::shutdown(ShutdownMode mode) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (joined_) return;
    if (!stopping_) {
      stopping_ = true;
      mode_ = mode;
    }
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (KvConnector* c = core_->kv_connector()) c->set_wakeup(nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  joined_ = true;
}

void AsyncEngine::deliver(RequestOutput out) {
  OutputCallback cb;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = callbacks_.find(out.request_id);
    if (it == callbacks_.end()) return;
    cb = it->second;
    if (out.finished) callbacks_.erase(it);
  }
  try {
    cb(std::move(out));
  } catch (const std::exception& e) {
    BATON_LOG_ERROR("output callback threw: {}", e.what());
  } catch (...) {
    BATON_LOG_ERROR("output callback threw a non-standard exception");
  }
}

void AsyncEngine::publish_kv_events() {
  const EngineStats s = core_->stats();
  if (s.last_step_prefill_tokens > 0 && s.last_step_time_s > 0) {
    // The prompt throughput of recent steps that had prompt work: an
    // exponential moving average, so one odd step moves it a little.
    const double rate = s.last_step_prefill_tokens / s.last_step_time_s;
    prefill_tokens_per_s_ = prefill_tokens_per_s_ > 0 ? 0.8 * prefill_tokens_per_s_ + 0.2 * rate : rate;
  }
  KvLoad load;
  load.num_waiting = s.num_waiting;
  load.num_running = s.num_running;
  load.kv_usage = s.kv_usage;
  load.waiting_prompt_tokens = core_->waiting_prompt_tokens();
  load.prefill_tokens_per_s = prefill_tokens_per_s_;
  kv_events_->publish(core_->take_kv_events(), load);
}

void AsyncEngine::loop() {
  // The last step's outputs, delivered while the next step runs on the
  // backend (EngineCore::begin_step/end_step), or before anything else
  // touches the engine or the loop sleeps: a request's outputs keep their order.
  std::vector<RequestOutput> held;
  auto deliver_held = [&] {
    for (RequestOutput& o : held) deliver(std::move(o));
    held.clear();
  };
  while (true) {
    std::deque<Command> commands;
    bool stop_now = false;
    bool abort_all = false;
    if (!held.empty()) {
      bool steps_next;
      {
        std::lock_guard<std::mutex> lock(mu_);
        steps_next = commands_.empty() && !stopping_ && core_->needs_step();
      }
      if (!steps_next) deliver_held();
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [&] { return !commands_.empty() || stopping_ || core_->needs_step(); };
      KvConnector* kc = core_->kv_connector();
      if (kc != nullptr && kc->has_timers()) {
        // PD leases and pulls: look again soon even without a wakeup.
        cv_.wait_for(lock, std::chrono::milliseconds(kKvTimerPollMs), ready);
      } else {
        cv_.wait(lock, ready);
      }
      commands.swap(commands_);
      if (stopping_) {
        abort_all = mode_ == ShutdownMode::kAbort;
        stop_now = abort_all || (commands.empty() && !core_->has_unfinished_requests());
      }
    }
    if (!commands.empty() || stop_now || abort_all) deliver_held();
    for (Command& c : commands) {
      if (c.kind == Command::Kind::kSubmit) {
        const std::string id = c.request.request_id;
        const int num_prompt = static_cast<int>(c.request.prompt_ids.size());
        Status st = core_->add_request(std::move(c.request));
        if (!st.is_ok()) {
          RequestOutput o;
          o.request_id = id;
          o.finished = true;
          o.finish_reason = FinishReason::kAbort;
          o.error = st.to_string();
          o.num_prompt_tokens = num_prompt;
          deliver(std::move(o));
        }
      } else if (auto o = core_->abort_request(c.request_id)) {
        deliver(std::move(*o));
      }
    }
    if (abort_all) {
      std::vector<std::string> live;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& [id, cb] : callbacks_) live.push_back(id);
      }
      for (const std::string& id : live) {
        if (auto o = core_->abort_request(id)) deliver(std::move(*o));
      }
    }
    if (stop_now) break;
    if (core_->needs_step()) {
      std::vector<RequestOutput> early;
      const bool running = core_->begin_step(early);
      deliver_held();  // the previous step's outputs, while this one runs
      for (RequestOutput& o : early) deliver(std::move(o));
      if (running) held = core_->end_step();
      if (!core_->steps_overlap()) deliver_held();  // nothing to overlap with: deliver now
    }
    publish_kv_events();
    std::lock_guard<std::mutex> lock(mu_);
    stats_ = core_->stats();
    num_waiting_ = core_->num_waiting();
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = core_->stats();
  num_waiting_ = core_->num_waiting();
}

}  // namespace baton

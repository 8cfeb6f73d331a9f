#include "backend/tensor_parallel_backend.h"

#include <fmt/format.h>

namespace baton {

Result<std::unique_ptr<TensorParallelBackend>> TensorParallelBackend::create(
    std::vector<std::unique_ptr<Communicator>> comms, std::vector<std::unique_ptr<Backend>> ranks,
    std::chrono::milliseconds hang_timeout) {
  if (ranks.size() < 2) return invalid_argument("tensor parallelism needs at least two ranks, got {}", ranks.size());
  if (comms.size() != ranks.size())
    return invalid_argument("{} ranks but {} communicators", ranks.size(), comms.size());
  for (size_t r = 0; r < ranks.size(); ++r)
    if (ranks[r] == nullptr || comms[r] == nullptr || comms[r]->rank() != static_cast<int>(r) ||
        comms[r]->world_size() != static_cast<int>(ranks.size()))
      return invalid_argument("tensor parallel rank {} is missing or its communicator is not rank {} of {}", r, r,
                              ranks.size());
  return std::unique_ptr<TensorParallelBackend>(
      new TensorParallelBackend(std::move(comms), std::move(ranks), hang_timeout));
}

TensorParallelBackend::TensorParallelBackend(std::vector<std::unique_ptr<Communicator>> comms,
                                             std::vector<std::unique_ptr<Backend>> ranks,
                                             std::chrono::milliseconds hang_timeout)
    : comms_(std::move(comms)), ranks_(std::move(ranks)), hang_timeout_(hang_timeout), results_(ranks_.size()) {
  for (int r = 1; r < world_size(); ++r) workers_.emplace_back([this, r] { worker_loop(r); });
}

TensorParallelBackend::~TensorParallelBackend() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

std::string TensorParallelBackend::device_name() const {
  return fmt::format("{} (tensor parallel x{})", ranks_.front()->device_name(), world_size());
}

size_t TensorParallelBackend::kv_block_bytes(int block_size) const {
  size_t bytes = 0;
  for (const auto& r : ranks_) bytes += r->kv_block_bytes(block_size);
  return bytes;
}

size_t TensorParallelBackend::available_kv_bytes() const {
  size_t bytes = 0;
  for (const auto& r : ranks_) bytes += r->available_kv_bytes();
  return bytes;
}

Status TensorParallelBackend::init_kv_cache(int num_blocks, int block_size) {
  for (int r = 0; r < world_size(); ++r) {
    Status st = ranks_[r]->init_kv_cache(num_blocks, block_size);
    if (!st.is_ok()) return st.with_context(fmt::format("tensor parallel rank {}", r));
  }
  return Status::ok();
}

KvMemory TensorParallelBackend::kv_memory() {
  KvMemory m = ranks_.front()->kv_memory();
  const ModelConfig& c = model_config();
  const int model_kv_heads = c.is_mla() ? 1 : c.num_kv_heads;  // MLA: the latent row, on every rank
  m.tp.tp_size = world_size();
  m.tp.kv_heads_per_rank = m.layout.num_kv_heads;
  m.tp.kv_head_replicas = model_kv_heads > 0 ? world_size() * m.layout.num_kv_heads / model_kv_heads : 1;
  m.rank_bases.clear();
  for (auto& r : ranks_) m.rank_bases.push_back(r->kv_memory().base);
  return m;
}

void TensorParallelBackend::worker_loop(int rank) {
  uint64_t seen = 0;
  for (;;) {
    std::shared_ptr<const StepInput> step;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || step_id_ != seen; });
      if (stop_) return;
      seen = step_id_;
      step = step_;
    }
    Result<StepOutput> out = ranks_[rank]->execute(*step);
    std::lock_guard<std::mutex> lock(mu_);
    if (seen == step_id_) record_locked(rank, std::move(out));
  }
}

void TensorParallelBackend::record_locked(int rank, Result<StepOutput> out) {
  if ((rank == 0 || !out.is_ok()) && !hang_clock_) hang_clock_ = std::chrono::steady_clock::now();
  results_[rank] = std::move(out);
  --pending_;
  done_cv_.notify_all();
}

Status TensorParallelBackend::hang_locked(std::chrono::steady_clock::time_point now) const {
  if (pending_ == 0 || !hang_clock_ || now - *hang_clock_ < hang_timeout_) return Status::ok();
  std::string running;
  for (int r = 0; r < world_size(); ++r)
    if (!results_[r].has_value()) running += fmt::format("{}{}", running.empty() ? "" : ", ", r);
  const std::string failed = results_[0].has_value() && results_[0]->is_ok() ? "rank 0 finished the step"
                                                                             : "a rank failed";
  return deadline_exceeded(
      "tensor parallel rank(s) {} of {} hung: still running step {} {} ms after {}; the instance is stopped", running,
      world_size(), step_id_, hang_timeout_.count(), failed);
}

Status TensorParallelBackend::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!broken_.is_ok()) return broken_;
  return hang_locked(std::chrono::steady_clock::now());
}

void TensorParallelBackend::abort(const Status& cause) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_.is_ok()) broken_ = cause;
  }
  for (auto& comm : comms_) comm->abort(cause);
}

Result<StepOutput> TensorParallelBackend::execute(const StepInput& in) {
  auto step = std::make_shared<const StepInput>(in);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!broken_.is_ok()) return broken_;
    for (auto& r : results_) r.reset();
    hang_clock_.reset();
    step_ = step;
    ++step_id_;
    pending_ = world_size();
  }
  work_cv_.notify_all();
  Result<StepOutput> own = ranks_[0]->execute(*step);
  std::unique_lock<std::mutex> lock(mu_);
  record_locked(0, std::move(own));
  while (pending_ > 0) {
    // hang_clock_ is set: rank 0 has returned.
    if (done_cv_.wait_until(lock, *hang_clock_ + hang_timeout_, [&] { return pending_ == 0; })) break;
    broken_ = hang_locked(std::chrono::steady_clock::now());
    if (!broken_.is_ok()) return broken_;
  }
  step_ = nullptr;
  // An invalid step fails on every rank before any collective and leaves the
  // group working; any other failure ends it.
  Status first_error;
  for (int r = 0; r < world_size(); ++r) {
    if (results_[r]->is_ok()) continue;
    Status st = results_[r]->status().with_context(fmt::format("tensor parallel rank {} of {}", r, world_size()));
    if (st.code() != StatusCode::kInvalidArgument && broken_.is_ok()) broken_ = st;
    if (first_error.is_ok()) first_error = st;
  }
  if (!broken_.is_ok()) return broken_;
  if (!first_error.is_ok()) return first_error;
  return std::move(*results_[0]);
}

}  // namespace baton

#include "backend/tensor_parallel_backend.h"

#include <fmt/format.h>

namespace baton {

Result<std::unique_ptr<TensorParallelBackend>> TensorParallelBackend::create(
    std::vector<std::unique_ptr<Communicator>> comms, std::vector<std::unique_ptr<Backend>> ranks) {
  if (ranks.size() < 2) return invalid_argument("tensor parallelism needs at least two ranks, got {}", ranks.size());
  if (comms.size() != ranks.size())
    return invalid_argument("{} ranks but {} communicators", ranks.size(), comms.size());
  for (size_t r = 0; r < ranks.size(); ++r)
    if (ranks[r] == nullptr || comms[r] == nullptr || comms[r]->rank() != static_cast<int>(r) ||
        comms[r]->world_size() != static_cast<int>(ranks.size()))
      return invalid_argument("tensor parallel rank {} is missing or its communicator is not rank {} of {}", r, r,
                              ranks.size());
  return std::unique_ptr<TensorParallelBackend>(new TensorParallelBackend(std::move(comms), std::move(ranks)));
}

TensorParallelBackend::TensorParallelBackend(std::vector<std::unique_ptr<Communicator>> comms,
                                             std::vector<std::unique_ptr<Backend>> ranks)
    : comms_(std::move(comms)), ranks_(std::move(ranks)), results_(ranks_.size()) {
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
    const StepInput* step = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || step_id_ != seen; });
      if (stop_) return;
      seen = step_id_;
      step = step_;
    }
    Result<StepOutput> out = ranks_[rank]->execute(*step);
    std::lock_guard<std::mutex> lock(mu_);
    results_[rank] = std::move(out);
    if (--pending_ == 0) done_cv_.notify_all();
  }
}

Result<StepOutput> TensorParallelBackend::execute(const StepInput& in) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& r : results_) r.reset();
    step_ = &in;
    ++step_id_;
    pending_ = world_size() - 1;
  }
  work_cv_.notify_all();
  results_[0] = ranks_[0]->execute(in);  // workers write only their own slots
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    step_ = nullptr;
  }
  for (int r = 0; r < world_size(); ++r)
    if (!results_[r]->is_ok())
      return results_[r]->status().with_context(fmt::format("tensor parallel rank {} of {}", r, world_size()));
  return std::move(*results_[0]);
}

}  // namespace baton

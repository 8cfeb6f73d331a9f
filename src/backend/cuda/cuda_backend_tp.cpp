// CudaBackend's tensor-parallel parts: the rank's shapes, its collectives
// and the guarded wait for a step (cuda_backend.h).
#include <thread>

#include "backend/cuda/cuda_backend.h"

namespace baton::cuda {

Status CudaBackend::set_rank(const ModelConfig& model, const CudaTpRank& rank) {
  model_config_ = model;
  const int n = rank.shard.world_size;
  if (n > 1 && (rank.comm == nullptr || rank.comm->world_size() != n || rank.comm->rank() != rank.shard.rank))
    return invalid_argument("tensor parallel rank {} of {} needs a communicator of that rank and size", rank.shard.rank,
                            n);
  if (n > 1) {
    shard_ = rank.shard;
  } else {
    BATON_ASSIGN_OR_RETURN(shard_, TpShard::make(model, 0, 1));
  }
  comm_ = rank.comm;
  config_ = shard_.rank_config(model);
  vocab_rows_ = n > 1 ? static_cast<int>(shard_.vocab_per_rank) : model.vocab_size;
  return Status::ok();
}

void CudaBackend::all_reduce_proj(int tokens) {
  if (comm_ == nullptr || !comm_status_.is_ok()) return;
  comm_status_ = comm_->all_reduce_sum_bf16(proj_.as<bf16>(), static_cast<int64_t>(tokens) * config_.hidden_size);
}

void CudaBackend::all_reduce_residual(int tokens) {
  if (comm_ == nullptr || !comm_status_.is_ok()) return;
  comm_status_ = comm_->all_reduce_sum(residual_.as<float>(), static_cast<int64_t>(tokens) * config_.hidden_size);
}

void CudaBackend::gather_logits(int rows) {
  if (!comm_status_.is_ok()) return;
  const int64_t per_rank = vocab_rows_, vocab = model_config_.vocab_size;
  comm_status_ = comm_->all_gather(rank_logits_.as<float>(), rows * per_rank, gathered_logits_.as<float>());
  if (!comm_status_.is_ok()) return;
  // [world, rows, per_rank] -> [rows, vocab]: each rank's real columns (its padding dropped).
  for (int w = 0; w < shard_.world_size; ++w) {
    const int64_t v0 = w * per_rank, count = std::max<int64_t>(0, std::min(per_rank, vocab - v0));
    if (count == 0 || rows == 0) continue;
    cudaError_t err = cudaMemcpy2DAsync(logits_.as<float>() + v0, vocab * sizeof(float),
                                        gathered_logits_.as<float>() + w * rows * per_rank, per_rank * sizeof(float),
                                        count * sizeof(float), rows, cudaMemcpyDeviceToDevice, stream_);
    if (err != cudaSuccess) {
      comm_status_ = cuda_status(err, "cudaMemcpy2DAsync (gathering the logits)");
      return;
    }
  }
}

Status CudaBackend::sync_stream() {
  if (comm_ == nullptr) return cuda_status(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  // Spin briefly (decode steps take milliseconds), then poll every 100 us:
  // a peer's failure shows in health(), a stall as the deadline passing.
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + options_.rank_timeout;
  for (;;) {
    cudaError_t err = cudaStreamQuery(stream_);
    if (err == cudaSuccess) return Status::ok();
    if (err != cudaErrorNotReady) {
      Status st = cuda_status(err, "the step's kernels");
      comm_->abort(st);
      return st;
    }
    BATON_RETURN_IF_ERROR(comm_->health());
    const auto now = std::chrono::steady_clock::now();
    if (now > deadline) {
      Status st = deadline_exceeded(
          "tensor parallel rank {} of {}: a step did not finish within {} ms (a peer rank failed or stalls); the "
          "instance stops",
          shard_.rank, shard_.world_size, options_.rank_timeout.count());
      comm_->abort(st);
      return st;
    }
    if (now - start < std::chrono::milliseconds(2)) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

}  // namespace baton::cuda

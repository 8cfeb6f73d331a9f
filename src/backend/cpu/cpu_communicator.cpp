#include "backend/cpu/cpu_communicator.h"

#include <algorithm>

namespace baton {

class CpuCommGroup {
 public:
  CpuCommGroup(int world_size, std::chrono::milliseconds timeout)
      : world_size_(world_size), timeout_(timeout), buffers_(world_size), counts_(world_size) {}

  int world_size() const { return world_size_; }

  // Returns when every rank has arrived (OK), or the group's error.
  Status barrier(int rank) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!broken_.is_ok()) return broken_;
    const uint64_t generation = generation_;
    if (++arrived_ == world_size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return Status::ok();
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (generation_ == generation && broken_.is_ok()) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && generation_ == generation && broken_.is_ok()) {
        broken_ = deadline_exceeded(
            "tensor parallel rank {} waited {} ms at a collective for the other ranks of {}: a rank is gone or hung",
            rank, timeout_.count(), world_size_);
        cv_.notify_all();
      }
    }
    return generation_ != generation ? Status::ok() : broken_;
  }

  void abort(const Status& cause) {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_.is_ok()) broken_ = cause.is_ok() ? aborted("tensor parallel group aborted") : cause;
    cv_.notify_all();
  }

  // Written by each rank before a barrier, read by all after it (the
  // barrier's mutex orders them).
  std::vector<const float*>& buffers() { return buffers_; }
  std::vector<int64_t>& counts() { return counts_; }
  std::vector<float>& scratch() { return scratch_; }

 private:
  const int world_size_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  Status broken_;
  std::vector<const float*> buffers_;  // [world_size]: each rank's buffer of this collective
  std::vector<int64_t> counts_;        // [world_size]: each rank's count
  std::vector<float> scratch_;         // all_reduce_sum's sums
};

std::vector<std::unique_ptr<CpuCommunicator>> CpuCommunicator::make_group(int world_size,
                                                                          std::chrono::milliseconds timeout) {
  auto group = std::make_shared<CpuCommGroup>(world_size, timeout);
  std::vector<std::unique_ptr<CpuCommunicator>> ranks;
  for (int r = 0; r < world_size; ++r) ranks.push_back(std::make_unique<CpuCommunicator>(group, r));
  return ranks;
}

int CpuCommunicator::world_size() const { return group_->world_size(); }

void CpuCommunicator::abort(const Status& cause) { group_->abort(cause); }

Status CpuCommunicator::publish(const float* data, int64_t count) {
  group_->buffers()[rank_] = data;
  group_->counts()[rank_] = count;
  BATON_RETURN_IF_ERROR(group_->barrier(rank_));
  for (int r = 0; r < world_size(); ++r) {
    if (group_->counts()[r] == count) continue;
    Status mismatch = internal_error("tensor parallel collective: rank {} passed {} elements, rank {} passed {}", rank_,
                                     count, r, group_->counts()[r]);
    group_->abort(mismatch);
    return mismatch;
  }
  return Status::ok();
}

Status CpuCommunicator::all_reduce_sum(float* data, int64_t count) {
  const int n = world_size();
  if (rank_ == 0) group_->scratch().resize(static_cast<size_t>(count));  // no rank reads it before the barrier
  BATON_RETURN_IF_ERROR(publish(data, count));
  // Reduce-scatter: this rank sums its share of the elements over all ranks.
  const int64_t share = (count + n - 1) / n;
  const int64_t begin = std::min(count, rank_ * share), end = std::min(count, begin + share);
  float* sums = group_->scratch().data();
  const std::vector<const float*>& in = group_->buffers();
  for (int64_t i = begin; i < end; ++i) {
    float s = in[0][i];
    for (int r = 1; r < n; ++r) s += in[r][i];
    sums[i] = s;
  }
  BATON_RETURN_IF_ERROR(group_->barrier(rank_));  // every share summed; nobody reads the inputs any more
  std::copy(sums, sums + count, data);
  return group_->barrier(rank_);  // every rank has its copy before the next collective reuses the sums
}

Status CpuCommunicator::all_gather(const float* in, int64_t count, float* out) {
  BATON_RETURN_IF_ERROR(publish(in, count));
  const std::vector<const float*>& bufs = group_->buffers();
  for (int r = 0; r < world_size(); ++r) std::copy(bufs[r], bufs[r] + count, out + r * count);
  return group_->barrier(rank_);  // the inputs stay valid until every rank has copied them
}

Status CpuCommunicator::broadcast(float* data, int64_t count, int root) {
  if (root < 0 || root >= world_size())
    return invalid_argument("broadcast root {} is outside [0, {})", root, world_size());
  BATON_RETURN_IF_ERROR(publish(rank_ == root ? data : nullptr, count));
  const float* src = group_->buffers()[root];
  if (rank_ != root) std::copy(src, src + count, data);
  return group_->barrier(rank_);
}

}  // namespace baton

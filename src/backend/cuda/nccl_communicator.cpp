#include "backend/cuda/nccl_communicator.h"

#include <atomic>
#include <cstdlib>
#include <mutex>

#include <fmt/format.h>

#include "backend/cuda/cuda_common.h"

#if BATON_HAVE_NCCL
#include <nccl.h>
#endif

namespace baton::cuda {

#if BATON_HAVE_NCCL

class NcclGroup {
 public:
  explicit NcclGroup(std::vector<ncclComm_t> comms) : comms_(std::move(comms)) {}
  ~NcclGroup() {
    if (!broken_.load())
      for (ncclComm_t c : comms_) ncclCommDestroy(c);
  }
  int size() const { return static_cast<int>(comms_.size()); }
  ncclComm_t comm(int rank) const { return comms_[rank]; }
  bool broken() const { return broken_.load(std::memory_order_acquire); }
  Status cause() {
    std::lock_guard<std::mutex> lock(mu_);
    return cause_;
  }
  // The first cause wins; every rank's communicator is aborted once.
  void abort(const Status& cause) {
    std::lock_guard<std::mutex> lock(mu_);
    if (broken_.load()) return;
    cause_ = cause;
    broken_.store(true, std::memory_order_release);
    for (ncclComm_t c : comms_) ncclCommAbort(c);
  }

 private:
  std::vector<ncclComm_t> comms_;
  std::mutex mu_;
  Status cause_;
  std::atomic<bool> broken_{false};
};

namespace {

// An NCCL call's failure as a Status, with NCCL's last message when it has one.
Status nccl_status(ncclResult_t r, ncclComm_t comm, int rank, const char* what) {
  if (r == ncclSuccess || r == ncclInProgress) return Status::ok();
  const char* last = comm != nullptr ? ncclGetLastError(comm) : ncclGetLastError(nullptr);
  return internal_error("NCCL {} on tensor parallel rank {}: {}{}{}", what, rank, ncclGetErrorString(r),
                        last != nullptr && *last != '\0' ? ": " : "", last != nullptr ? last : "");
}

}  // namespace

bool NcclCommunicator::available() { return true; }

Result<std::vector<std::unique_ptr<NcclCommunicator>>> NcclCommunicator::make_group(const std::vector<int>& devices) {
  if (devices.empty()) return invalid_argument("an NCCL group needs at least one device");
  setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);  // NVLink multicast stays off (docs/parallelism.md)
  int current = 0;
  BATON_CUDA_RETURN(cudaGetDevice(&current));
  std::vector<ncclComm_t> comms(devices.size(), nullptr);
  ncclResult_t r = ncclCommInitAll(comms.data(), static_cast<int>(devices.size()), devices.data());
  cudaSetDevice(current);
  if (r != ncclSuccess) {
    std::string list;
    for (int d : devices) list += (list.empty() ? "" : ",") + std::to_string(d);
    return nccl_status(r, nullptr, 0, "ncclCommInitAll").with_context(fmt::format("joining GPUs {}", list));
  }
  auto group = std::make_shared<NcclGroup>(std::move(comms));
  std::vector<std::unique_ptr<NcclCommunicator>> ranks;
  for (int rank = 0; rank < group->size(); ++rank) ranks.push_back(std::make_unique<NcclCommunicator>(group, rank));
  return ranks;
}

int NcclCommunicator::world_size() const { return group_->size(); }

void NcclCommunicator::abort(const Status& cause) { group_->abort(cause); }

Status NcclCommunicator::health() {
  if (group_->broken()) return group_->cause();
  ncclResult_t async = ncclSuccess;
  ncclResult_t r = ncclCommGetAsyncError(group_->comm(rank_), &async);
  Status st = nccl_status(r != ncclSuccess ? r : async, group_->comm(rank_), rank_, "asynchronous error");
  if (!st.is_ok()) group_->abort(st);
  return st;
}

#define BATON_NCCL_COLLECTIVE(call, what)                               \
  do {                                                                  \
    if (group_->broken()) return group_->cause();                       \
    Status _st = nccl_status((call), group_->comm(rank_), rank_, what); \
    if (!_st.is_ok()) group_->abort(_st);                               \
    return _st;                                                         \
  } while (0)

Status NcclCommunicator::all_reduce_sum(float* data, int64_t count) {
  BATON_NCCL_COLLECTIVE(ncclAllReduce(data, data, count, ncclFloat32, ncclSum, group_->comm(rank_), stream_),
                        "all-reduce");
}

Status NcclCommunicator::all_reduce_sum_bf16(bf16* data, int64_t count) {
  BATON_NCCL_COLLECTIVE(ncclAllReduce(data, data, count, ncclBfloat16, ncclSum, group_->comm(rank_), stream_),
                        "all-reduce");
}

Status NcclCommunicator::all_gather(const float* in, int64_t count, float* out) {
  BATON_NCCL_COLLECTIVE(ncclAllGather(in, out, count, ncclFloat32, group_->comm(rank_), stream_), "all-gather");
}

Status NcclCommunicator::broadcast(float* data, int64_t count, int root) {
  if (root < 0 || root >= world_size())
    return invalid_argument("broadcast root {} is outside [0, {})", root, world_size());
  BATON_NCCL_COLLECTIVE(ncclBroadcast(data, data, count, ncclFloat32, root, group_->comm(rank_), stream_), "broadcast");
}

#undef BATON_NCCL_COLLECTIVE

#else  // no NCCL in this build

class NcclGroup {
 public:
  int size() const { return 0; }
};

namespace {
Status no_nccl() {
  return unimplemented(
      "this build of baton has no NCCL (nccl.h and libnccl were not found beside the CUDA toolkit when it was "
      "configured), so the cuda backend runs one rank only; use --tensor-parallel-size 1 or rebuild where NCCL is "
      "installed");
}
}  // namespace

bool NcclCommunicator::available() { return false; }
Result<std::vector<std::unique_ptr<NcclCommunicator>>> NcclCommunicator::make_group(const std::vector<int>&) {
  return no_nccl();
}
int NcclCommunicator::world_size() const { return group_->size(); }
void NcclCommunicator::abort(const Status&) {}
Status NcclCommunicator::health() { return no_nccl(); }
Status NcclCommunicator::all_reduce_sum(float*, int64_t) { return no_nccl(); }
Status NcclCommunicator::all_reduce_sum_bf16(bf16*, int64_t) { return no_nccl(); }
Status NcclCommunicator::all_gather(const float*, int64_t, float*) { return no_nccl(); }
Status NcclCommunicator::broadcast(float*, int64_t, int) { return no_nccl(); }

#endif

}  // namespace baton::cuda

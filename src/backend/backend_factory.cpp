#include "backend/backend_factory.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_communicator.h"
#include "backend/tensor_parallel_backend.h"

namespace baton {
namespace {

// How long a rank waits at a collective for the others before the instance
// fails (issue 16: a lost rank ends the instance within 5 s). Every rank does
// the same work between two collectives (one layer), so a healthy wait is
// the ranks' imbalance over one layer, far below this.
constexpr std::chrono::milliseconds kRankTimeout{3000};

// tensor_parallel_size CPU ranks, each converting only its slice, with the
// threads and the KV budget shared among them.
Result<std::unique_ptr<Backend>> make_cpu_tensor_parallel(const Checkpoint& ckpt, const BackendOptions& options) {
  const int n = options.tensor_parallel_size;
  BATON_RETURN_IF_ERROR(check_tensor_parallel(ckpt.config(), n, options.enable_expert_parallel));
  BackendOptions per_rank = options;
  const int threads = options.num_threads > 0 ? options.num_threads
                                              : static_cast<int>(std::thread::hardware_concurrency());
  per_rank.num_threads = std::max(1, threads / n);
  const size_t kv_bytes = options.cpu_kv_cache_bytes > 0 ? options.cpu_kv_cache_bytes : CpuBackend::kDefaultKvBytes;
  per_rank.cpu_kv_cache_bytes = std::max<size_t>(1, kv_bytes / n);  // one memory for all ranks
  std::vector<std::unique_ptr<CpuCommunicator>> group = CpuCommunicator::make_group(n, kRankTimeout);
  std::vector<std::unique_ptr<Communicator>> comms;
  std::vector<std::unique_ptr<Backend>> ranks;
  for (int r = 0; r < n; ++r) {
    BATON_ASSIGN_OR_RETURN(TpShard shard, TpShard::make(ckpt.config(), r, n, options.enable_expert_parallel));
    Result<std::unique_ptr<CpuBackend>> rank = CpuBackend::create_rank(ckpt, per_rank,
                                                                       CpuTpRank{shard, group[r].get()});
    if (!rank.is_ok()) return rank.status().with_context(fmt::format("tensor parallel rank {} of {}", r, n));
    ranks.push_back(std::move(rank).value());
    comms.push_back(std::move(group[r]));
  }
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<TensorParallelBackend> tp,
                         TensorParallelBackend::create(std::move(comms), std::move(ranks)));
  return std::unique_ptr<Backend>(std::move(tp));
}

Result<std::unique_ptr<Backend>> make_cpu(const Checkpoint& ckpt, const BackendOptions& options) {
  if (options.tensor_parallel_size > 1) return make_cpu_tensor_parallel(ckpt, options);
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<CpuBackend> b, CpuBackend::create(ckpt, options));
  return std::unique_ptr<Backend>(std::move(b));
}

// The registry: device name -> maker. Written by explicit registrations at
// start and read afterwards; the mutex covers both.
struct Registry {
  std::mutex mu;
  std::map<std::string, BackendMaker> makers{{"cpu", &make_cpu}};
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void register_backend(const std::string& device, BackendMaker maker) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.makers[device] = maker;
}

std::vector<std::string> registered_backends() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  for (const auto& [name, maker] : r.makers) names.push_back(name);
  return names;
}

Result<std::unique_ptr<Backend>> make_backend(const std::string& device, const Checkpoint& ckpt,
                                              const BackendOptions& options) {
  if (options.tensor_parallel_size < 1)
    return invalid_argument("--tensor-parallel-size must be at least 1, got {}", options.tensor_parallel_size);
  if (options.tensor_parallel_size > 1 && device != "cpu" && device != "cuda")
    return unimplemented(
        "--tensor-parallel-size {} on device '{}': only the cpu and cuda backends run more than one rank; use "
        "--tensor-parallel-size 1",
        options.tensor_parallel_size, device);
  BackendMaker maker = nullptr;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.makers.find(device);
    if (it != r.makers.end()) maker = it->second;
  }
  if (maker != nullptr) return maker(ckpt, options);
  if (device == "cuda")
    return unimplemented(
        "device 'cuda' is not available{}: this build of baton has no CUDA backend "
        "(configure with -DBATON_CUDA=ON on a machine with the CUDA toolkit)",
        options.tensor_parallel_size > 1 ? fmt::format(" (--tensor-parallel-size {})", options.tensor_parallel_size)
                                         : "");
  std::string known;
  for (const std::string& name : registered_backends()) known += (known.empty() ? "" : ", ") + name;
  return invalid_argument("unknown device '{}' (known: {}{})", device, known,
                          known.find("cuda") == std::string::npos ? ", cuda in CUDA builds" : "");
}

}  // namespace baton

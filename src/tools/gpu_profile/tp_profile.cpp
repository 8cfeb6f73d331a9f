#include "tools/gpu_profile/tp_profile.h"

#include <algorithm>
#include <thread>

#include "backend/cuda/cuda_tensor_parallel.h"
#include "backend/cuda/nccl_communicator.h"

namespace baton::cuda {

Result<std::unique_ptr<Backend>> make_random_tensor_parallel(const ModelConfig& config, const CudaBackendOptions& o,
                                                             int tensor_parallel_size, const std::vector<int>& gpus,
                                                             uint64_t seed) {
  BATON_RETURN_IF_ERROR(check_tensor_parallel(config, tensor_parallel_size, o.enable_expert_parallel));
  BATON_ASSIGN_OR_RETURN(std::vector<int> devices, choose_tp_devices(gpus, tensor_parallel_size));
  BATON_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<NcclCommunicator>> nccl, NcclCommunicator::make_group(devices));
  std::vector<std::unique_ptr<DeviceCommunicator>> comms;
  for (auto& c : nccl) comms.push_back(std::move(c));
  CudaRankMaker make_rank = [&config, seed](const CudaBackendOptions& ro, const CudaTpRank& rank) {
    return CudaBackend::create_random(config, ro, seed, rank);
  };
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<TensorParallelBackend> tp,
                         make_cuda_tensor_parallel(config, o, devices, std::move(comms), make_rank));
  return std::unique_ptr<Backend>(std::move(tp));
}

void for_each_cuda_rank(Backend& b, const std::function<void(CudaBackend&)>& fn) {
  if (auto* tp = dynamic_cast<TensorParallelBackend*>(&b)) {
    for (int r = 0; r < tp->world_size(); ++r) for_each_cuda_rank(tp->rank(r), fn);
  } else if (auto* one = dynamic_cast<CudaBackend*>(&b)) {
    fn(*one);
  }
}

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Rank `rank`'s part: `iters` timed all-reduces of each size (after two
// untimed), the times in ms into times[size index].
Status time_rank(NcclCommunicator& comm, int device, const std::vector<size_t>& sizes, int iters,
                 std::vector<std::vector<double>>* times) {
  BATON_CUDA_RETURN(cudaSetDevice(device));
  cudaStream_t stream;
  BATON_CUDA_RETURN(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  comm.set_stream(stream);
  DeviceBuffer buf;
  Status st = buf.allocate(*std::max_element(sizes.begin(), sizes.end()));
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (size_t i = 0; i < sizes.size() && st.is_ok(); ++i) {
    const int64_t count = static_cast<int64_t>(sizes[i] / sizeof(bf16));
    st = cuda_status(cudaMemsetAsync(buf.get(), 0, sizes[i], stream), "cudaMemsetAsync");
    for (int it = 0; it < iters + 2 && st.is_ok(); ++it) {
      cudaEventRecord(e0, stream);
      st = comm.all_reduce_sum_bf16(buf.as<bf16>(), count);
      cudaEventRecord(e1, stream);
      if (st.is_ok()) st = cuda_status(cudaEventSynchronize(e1), "the all-reduce");
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      if (it >= 2) (*times)[i].push_back(ms);
    }
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(stream);
  if (!st.is_ok()) comm.abort(st);
  return st;
}

}  // namespace

Result<Json> measure_all_reduce(int tensor_parallel_size, const std::vector<int>& gpus,
                                const std::vector<size_t>& sizes_bytes, int iters) {
  const int n = tensor_parallel_size;
  BATON_ASSIGN_OR_RETURN(std::vector<int> devices, choose_tp_devices(gpus, n));
  BATON_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<NcclCommunicator>> comms, NcclCommunicator::make_group(devices));
  std::vector<std::vector<std::vector<double>>> times(n, std::vector<std::vector<double>>(sizes_bytes.size()));
  std::vector<Status> results(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] { results[r] = time_rank(*comms[r], devices[r], sizes_bytes, iters, &times[r]); });
  for (std::thread& t : threads) t.join();
  for (const Status& st : results) BATON_RETURN_IF_ERROR(st);
  Json rows = Json::array();
  for (size_t i = 0; i < sizes_bytes.size(); ++i) {
    double ms = 0;  // the slowest rank's median: the collective ends when its last rank does
    for (int r = 0; r < n; ++r) ms = std::max(ms, median(times[r][i]));
    // At one rank NCCL moves nothing (the time is the call's cost): no bandwidth.
    const double algbw = ms > 0 && n > 1 ? sizes_bytes[i] / (ms * 1e-3) / 1e9 : 0.0;
    rows.push_back(Json{{"bytes", static_cast<double>(sizes_bytes[i])},
                        {"us", ms * 1e3},
                        {"algbw_gbps", algbw},
                        {"busbw_gbps", algbw * 2.0 * (n - 1) / n}});
  }
  return rows;
}

}  // namespace baton::cuda

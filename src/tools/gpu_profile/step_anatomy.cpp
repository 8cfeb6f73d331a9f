#include "tools/gpu_profile/step_anatomy.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/kernels.h"

namespace baton::cuda {
namespace {

constexpr double kHoldTimeoutMs = 2000;  // launch_hold_stream's limit

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<StepAnatomy> time_step_anatomy(CudaBackend& b, const std::function<StepInput(int)>& make_input, int iters) {
  int* flag_host = nullptr;
  BATON_CUDA_RETURN(cudaHostAlloc(&flag_host, sizeof(int), cudaHostAllocMapped));
  int* flag_dev = nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  auto release = [&] {
    if (e0 != nullptr) cudaEventDestroy(e0);
    if (e1 != nullptr) cudaEventDestroy(e1);
    cudaFreeHost(flag_host);
  };
  Status st = cuda_status(cudaHostGetDevicePointer(reinterpret_cast<void**>(&flag_dev), flag_host, 0),
                          "cudaHostGetDevicePointer");
  if (st.is_ok()) st = cuda_status(cudaEventCreate(&e0), "cudaEventCreate");
  if (st.is_ok()) st = cuda_status(cudaEventCreate(&e1), "cudaEventCreate");
  std::vector<double> gpu, submit, wall;
  volatile int* flag = flag_host;
  for (int it = 0; st.is_ok() && it <= iters; ++it) {
    StepInput in = make_input(it);
    // Held: the step's GPU work queues up behind the spinning kernel.
    *flag = 0;
    launch_hold_stream(flag_dev, b.stream());
    cudaEventRecord(e0, b.stream());
    auto t0 = std::chrono::steady_clock::now();
    st = b.submit(in);
    const double submit_ms = ms_since(t0);
    cudaEventRecord(e1, b.stream());
    std::atomic_thread_fence(std::memory_order_seq_cst);
    *flag = 1;
    if (!st.is_ok()) break;
    Result<StepOutput> out = b.wait();
    if (!out.is_ok()) {
      st = out.status();
      break;
    }
    float gpu_ms = 0;
    st = cuda_status(cudaEventElapsedTime(&gpu_ms, e0, e1), "cudaEventElapsedTime");
    // The hold gives up after 2 s: a submit() that waits on the stream (a
    // first use tuning its GEMMs) would have run into it.
    if (st.is_ok() && submit_ms >= kHoldTimeoutMs) {
      st = failed_precondition("step {}'s submit() took {:.0f} ms: it waited on the held stream (a first use?)", it,
                               submit_ms);
    }
    // Not held: the wall time of the same step.
    t0 = std::chrono::steady_clock::now();
    Result<StepOutput> again = b.execute(in);
    const double wall_ms = ms_since(t0);
    if (st.is_ok() && !again.is_ok()) st = again.status();
    if (it == 0) continue;  // warm-up
    gpu.push_back(gpu_ms);
    submit.push_back(submit_ms);
    wall.push_back(wall_ms);
  }
  release();
  if (!st.is_ok()) return st.with_context("timing the step's GPU and host parts");
  StepAnatomy a;
  a.gpu_ms = median_of(gpu);
  a.submit_ms = median_of(submit);
  a.wall_ms = median_of(wall);
  return a;
}

}  // namespace baton::cuda

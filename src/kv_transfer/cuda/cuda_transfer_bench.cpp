#include "kv_transfer/cuda/cuda_transfer_bench.h"

#include <cuda_runtime.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>

#include <fmt/format.h>

#include "common/json.h"
#include "common/log.h"
#include "kv_transfer/bench_util.h"
#include "kv_transfer/cuda/cuda_block_copy.h"
#include "kv_transfer/cuda/cuda_ipc_transport.h"
#include "kv_transfer/transfer_engine.h"

namespace baton {

namespace {

constexpr uint64_t kSeed = 42;

Result<std::unique_ptr<TransferEngine>> make_engine(const std::string& id) {
  TransferEngineOptions opts;
  opts.engine_id = id;
  opts.num_workers = 1;
  opts.default_timeout_ms = 120000;
  return TransferEngine::create(std::make_unique<CudaIpcTransport>(), opts);
}

// Fills a device buffer with the pattern through a host bounce buffer.
Status fill_device(uint8_t* dev, size_t num_bytes) {
  constexpr size_t kChunk = 64u << 20;
  std::vector<uint8_t> host(std::min(kChunk, num_bytes));
  for (size_t off = 0; off < num_bytes; off += kChunk) {
    const size_t n = std::min(kChunk, num_bytes - off);
    fill_pattern(host.data(), n, kSeed, off / 8);
    BATON_RETURN_IF_ERROR(cuda_status(cudaMemcpy(dev + off, host.data(), n, cudaMemcpyHostToDevice),
                                      "filling the source KV"));
  }
  return Status::ok();
}

[[noreturn]] void child_serve(const CudaTransferBenchOptions& o, int64_t num_blocks, int port_fd,
                              int stop_fd) {
  int port = -1;
  std::unique_ptr<TransferEngine> engine;
  void* dev = nullptr;
  KvRegionDesc region = o.region;
  region.num_blocks = num_blocks;
  region.memory = MemoryKind::kDevice;
  region.device_id = o.src_device;
  Status st = cuda_status(cudaSetDevice(o.src_device), "cudaSetDevice (serving side)");
  if (st.is_ok()) st = cuda_status(cudaMalloc(&dev, region.total_bytes()), "cudaMalloc (serving KV)");
  if (st.is_ok()) st = fill_device(static_cast<uint8_t*>(dev), region.total_bytes());
  if (st.is_ok()) {
    region.base = dev;
    auto e = make_engine("bench-prefill-gpu");
    if (e.is_ok()) st = (*e)->register_memory(region);
    else st = e.status();
    if (st.is_ok()) st = (*e)->start_agent(nullptr);
    if (st.is_ok()) {
      port = (*e)->agent_port();
      engine = std::move(e).value();
    }
  }
  if (!st.is_ok()) std::cerr << "bench-transfer (serving GPU): " << st.to_string() << "\n";
  ssize_t w = ::write(port_fd, &port, sizeof(port));
  (void)w;
  char c;
  while (::read(stop_fd, &c, 1) > 0) {
  }
  engine.reset();
  if (dev != nullptr) cudaFree(dev);
  ::_exit(0);
}

// Best-of-repeats seconds of one cudaMemcpyPeerAsync of num_bytes.
Result<double> time_peer_copy(void* dst, int dst_dev, const void* src, int src_dev,
                              size_t num_bytes, int repeats, cudaStream_t stream) {
  cudaEvent_t start, stop;
  BATON_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&start), "cudaEventCreate"));
  BATON_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&stop), "cudaEventCreate"));
  double best = 1e30;
  for (int r = 0; r < repeats + 1; ++r) {  // the first is a warm-up
    cudaEventRecord(start, stream);
    BATON_RETURN_IF_ERROR(cuda_status(cudaMemcpyPeerAsync(dst, dst_dev, src, src_dev, num_bytes, stream),
                                      "cudaMemcpyPeerAsync"));
    cudaEventRecord(stop, stream);
    BATON_RETURN_IF_ERROR(cuda_status(cudaEventSynchronize(stop), "peer copy"));
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    if (r > 0) best = std::min(best, static_cast<double>(ms) * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

// Compares every 7th moved block (copied back to the host) with the pattern.
Status verify_sample(const uint8_t* dst_dev, size_t block_bytes, const std::vector<int64_t>& remote,
                     const std::vector<int64_t>& local) {
  std::vector<uint8_t> got(block_bytes), want(block_bytes);
  for (size_t i = 0; i < remote.size(); i += 7) {
    BATON_RETURN_IF_ERROR(cuda_status(
        cudaMemcpy(got.data(), dst_dev + static_cast<size_t>(local[i]) * block_bytes, block_bytes,
                   cudaMemcpyDeviceToHost),
        "reading back a moved block"));
    fill_pattern(want.data(), block_bytes, kSeed, static_cast<uint64_t>(remote[i]) * block_bytes / 8);
    if (std::memcmp(got.data(), want.data(), block_bytes) != 0) {
      return data_loss("cuda_ipc moved remote block {} into local block {} with wrong bytes",
                       remote[i], local[i]);
    }
  }
  return Status::ok();
}

struct Child {
  pid_t pid = -1;
  int stop_fd = -1;
  ~Child() {
    if (stop_fd >= 0) ::close(stop_fd);
    if (pid > 0) ::waitpid(pid, nullptr, 0);
  }
};

Status run(const CudaTransferBenchOptions& o) {
  const int max_tokens = *std::max_element(o.tokens.begin(), o.tokens.end());
  const int64_t n_max = (max_tokens + o.region.block_size - 1) / o.region.block_size;
  const size_t block_bytes = o.region.block_bytes;

  int port_pipe[2], stop_pipe[2];
  if (::pipe(port_pipe) != 0 || ::pipe(stop_pipe) != 0) return internal_error("pipe failed");
  std::cout.flush();
  const pid_t pid = ::fork();  // before this process touches CUDA
  if (pid < 0) return internal_error("fork failed");
  if (pid == 0) {
    ::close(port_pipe[0]);
    ::close(stop_pipe[1]);
    child_serve(o, n_max, port_pipe[1], stop_pipe[0]);
  }
  ::close(port_pipe[1]);
  ::close(stop_pipe[0]);
  Child child{pid, stop_pipe[1]};
  int port = -1;
  if (::read(port_pipe[0], &port, sizeof(port)) != sizeof(port)) port = -1;
  ::close(port_pipe[0]);
  if (port <= 0) return unavailable("the serving GPU process failed to start");

  int num_devices = 0;
  BATON_RETURN_IF_ERROR(cuda_status(cudaGetDeviceCount(&num_devices), "cudaGetDeviceCount"));
  if (num_devices <= std::max(o.src_device, o.dst_device)) {
    return failed_precondition("bench-transfer --device cuda needs GPUs {} and {}; {} visible",
                               o.src_device, o.dst_device, num_devices);
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, o.dst_device);
  int can_peer = 0;
  cudaDeviceCanAccessPeer(&can_peer, o.dst_device, o.src_device);
  std::cout << fmt::format("GPUs: {} -> {} ({}), peer access {}\n", o.src_device, o.dst_device,
                           prop.name, can_peer ? "yes" : "no");

  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(o.dst_device), "cudaSetDevice"));
  KvRegionDesc dst = o.region;
  dst.num_blocks = n_max;
  dst.memory = MemoryKind::kDevice;
  dst.device_id = o.dst_device;
  void* dst_mem = nullptr;
  BATON_RETURN_IF_ERROR(cuda_status(cudaMalloc(&dst_mem, dst.total_bytes()), "cudaMalloc (KV)"));
  dst.base = dst_mem;
  BATON_ASSIGN_OR_RETURN(auto decode, make_engine("bench-decode-gpu"));
  BATON_RETURN_IF_ERROR(decode->register_memory(dst));
  BATON_ASSIGN_OR_RETURN(auto peer, decode->connect_peer("127.0.0.1", port));

  // Ceiling buffers: one contiguous copy of the same bytes, GPU to GPU.
  void* ceil_src = nullptr;
  void* ceil_dst = nullptr;
  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(o.src_device), "cudaSetDevice"));
  BATON_RETURN_IF_ERROR(cuda_status(cudaMalloc(&ceil_src, dst.total_bytes()), "cudaMalloc (ceiling)"));
  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(o.dst_device), "cudaSetDevice"));
  BATON_RETURN_IF_ERROR(cuda_status(cudaMalloc(&ceil_dst, dst.total_bytes()), "cudaMalloc (ceiling)"));
  if (can_peer) {
    const cudaError_t e = cudaDeviceEnablePeerAccess(o.src_device, 0);
    if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled) return cuda_status(e, "peer access");
    cudaGetLastError();
  }
  cudaStream_t stream;
  BATON_RETURN_IF_ERROR(cuda_status(cudaStreamCreate(&stream), "cudaStreamCreate"));

  std::cout << fmt::format("{:<9} {:>6} {:>6} {:>5} {:>9} {:>9} {:>9} {:>8} {:>10}  {}\n", "transport",
                           "tokens", "blocks", "runs", "MiB", "best_ms", "med_ms", "GB/s",
                           "peer GB/s", "of cudaMemcpyPeer");
  Json rows = Json::array();
  for (int tokens : o.tokens) {
    const int64_t n = (tokens + o.region.block_size - 1) / o.region.block_size;
    const size_t bytes = static_cast<size_t>(n) * block_bytes;
    const auto remote = scattered_block_ids(n, 1);
    const auto local = scattered_block_ids(n, 2);
    BATON_ASSIGN_OR_RETURN(auto runs, coalesce_block_runs(remote, local, n, n));
    ReadOptions warm_opts;
    warm_opts.request_id = "warmup";
    BATON_ASSIGN_OR_RETURN(auto warm, decode->read_blocks(peer.engine_id, remote, local, warm_opts));
    BATON_RETURN_IF_ERROR(warm->wait(300000));
    BATON_RETURN_IF_ERROR(verify_sample(static_cast<const uint8_t*>(dst_mem), block_bytes, remote, local));
    std::vector<double> times;
    for (int r = 0; r < std::max(1, o.repeats); ++r) {
      BATON_ASSIGN_OR_RETURN(auto h, decode->read_blocks(peer.engine_id, remote, local, {}));
      BATON_RETURN_IF_ERROR(h->wait(300000));
      times.push_back(h->elapsed_s());
    }
    std::sort(times.begin(), times.end());
    BATON_ASSIGN_OR_RETURN(double peer_s, time_peer_copy(ceil_dst, o.dst_device, ceil_src, o.src_device,
                                                         bytes, std::max(1, o.repeats), stream));
    const double gbps = static_cast<double>(bytes) / times.front() / 1e9;
    const double peer_gbps = static_cast<double>(bytes) / peer_s / 1e9;
    std::cout << fmt::format("{:<9} {:>6} {:>6} {:>5} {:>9.1f} {:>9.3f} {:>9.3f} {:>8.1f} {:>10.1f}  {:>5.1f}%\n",
                             "cuda_ipc", tokens, n, runs.size(), static_cast<double>(bytes) / (1 << 20),
                             times.front() * 1e3, times[times.size() / 2] * 1e3, gbps, peer_gbps,
                             100.0 * gbps / peer_gbps);
    rows.push_back(Json{{"transport", "cuda_ipc"}, {"tokens", tokens}, {"num_blocks", n},
                        {"num_runs", runs.size()}, {"bytes", bytes},
                        {"best_ms", times.front() * 1e3}, {"median_ms", times[times.size() / 2] * 1e3},
                        {"gbps", gbps}, {"ceiling", "cudaMemcpyPeer"}, {"ceiling_gbps", peer_gbps},
                        {"pct_of_ceiling", 100.0 * gbps / peer_gbps}, {"gpu", prop.name}});
  }
  BATON_RETURN_IF_ERROR(decode->notify_done(peer.engine_id, "bench"));
  decode.reset();
  cudaStreamDestroy(stream);
  cudaFree(ceil_dst);
  cudaFree(dst_mem);
  cudaSetDevice(o.src_device);
  cudaFree(ceil_src);
  if (!o.json_path.empty()) {
    BATON_RETURN_IF_ERROR(write_file(o.json_path, Json{{"rows", rows}}.dump(2) + "\n"));
  }
  return Status::ok();
}

}  // namespace

int run_cuda_transfer_bench(const CudaTransferBenchOptions& options) {
  if (options.tokens.empty()) {
    std::cerr << "bench-transfer: no --tokens given\n";
    return 2;
  }
  Status st = run(options);
  if (!st.is_ok()) {
    std::cerr << "bench-transfer --device cuda: " << st.to_string() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace baton

#include "tools/transfer_bench/cuda/cuda_transfer_bench.h"

#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "common/json.h"
#include "common/log.h"
#include "kv_transfer/cuda/cuda_block_copy.h"
#include "kv_transfer/cuda/cuda_device_copier.h"
#include "kv_transfer/cuda/cuda_ipc_transport.h"
#include "kv_transfer/tcp_transport.h"
#include "kv_transfer/transfer_engine.h"
#include "kv_transfer/ucx_transport.h"
#include "tools/transfer_bench/bandwidth.h"
#include "tools/transfer_bench/bench_util.h"

namespace baton {

namespace {

constexpr uint64_t kSeed = 42;

// tcp stages GPU KV through pinned host memory; so does ucx when its UCX
// build has no CUDA transports (with them, the copier goes unused).
bool needs_copier(const std::string& transport) { return transport == "tcp" || transport == "ucx"; }

Result<std::unique_ptr<TransferEngine>> make_engine(const std::string& transport, const std::string& id,
                                                    int tcp_streams) {
  TransferEngineOptions opts;
  opts.engine_id = id;
  opts.num_workers = 1;
  opts.default_timeout_ms = 120000;
  opts.agent.io_timeout_ms = 120000;
  std::unique_ptr<Transport> t;
  if (transport == "cuda_ipc") {
    t = std::make_unique<CudaIpcTransport>();
  } else if (transport == "tcp") {
    TcpTransportOptions topts;
    topts.num_streams = tcp_streams;
    t = std::make_unique<TcpTransport>(topts);
  } else if (transport == "ucx") {
    t = std::make_unique<UcxTransport>();  // UCX_TLS picks UCX's transports
  } else {
    return invalid_argument("unknown transport '{}' (cuda_ipc, tcp, ucx)", transport);
  }
  return TransferEngine::create(std::move(t), opts);
}

// Fills a device buffer with the pattern through a host bounce buffer.
Status fill_device(uint8_t* dev, size_t num_bytes) {
  constexpr size_t kChunk = 64u << 20;
  std::vector<uint8_t> host(std::min(kChunk, num_bytes));
  for (size_t off = 0; off < num_bytes; off += kChunk) {
    const size_t n = std::min(kChunk, num_bytes - off);
    fill_pattern(host.data(), n, kSeed, off / 8);
    BATON_RETURN_IF_ERROR(
        cuda_status(cudaMemcpy(dev + off, host.data(), n, cudaMemcpyHostToDevice), "filling the source KV"));
  }
  return Status::ok();
}

// The serving side of one transport: KV on o.src_device, filled with the
// pattern, behind a KV agent. Reports its port, then waits to be told to exit.
[[noreturn]] void child_serve(const CudaTransferBenchOptions& o, const std::string& transport, int64_t num_blocks,
                              int port_fd, int stop_fd) {
  int port = -1;
  std::unique_ptr<CudaDeviceCopier> copier;  // tcp: stages the KV through pinned host memory
  std::unique_ptr<TransferEngine> engine;
  void* dev = nullptr;
  KvRegionDesc region = o.region;
  region.layout.num_blocks = static_cast<int>(num_blocks);
  region.memory = MemoryKind::kDevice;
  region.device_id = o.src_device;
  Status st = cuda_status(cudaSetDevice(o.src_device), "cudaSetDevice (serving side)");
  if (st.is_ok()) st = cuda_status(cudaMalloc(&dev, region.total_bytes()), "cudaMalloc (serving KV)");
  if (st.is_ok()) st = fill_device(static_cast<uint8_t*>(dev), region.total_bytes());
  if (st.is_ok()) {
    region.base = dev;
    if (needs_copier(transport)) {
      copier = std::make_unique<CudaDeviceCopier>(o.src_device);
      region.copier = copier.get();
    }
    auto e = make_engine(transport, "bench-prefill-" + transport, o.tcp_streams);
    if (e.is_ok()) st = (*e)->register_memory(region);
    else st = e.status();
    if (st.is_ok()) st = (*e)->start_agent(nullptr);
    if (st.is_ok()) {
      port = (*e)->agent_port();
      engine = std::move(e).value();
    }
  }
  if (!st.is_ok()) std::cerr << "bench-transfer (serving GPU, " << transport << "): " << st.to_string() << "\n";
  ssize_t w = ::write(port_fd, &port, sizeof(port));
  (void)w;
  char c;
  while (::read(stop_fd, &c, 1) > 0) {
  }
  engine.reset();
  copier.reset();
  if (dev != nullptr) cudaFree(dev);
  ::_exit(0);
}

// `earlier`: the servers already forked; the new child closes its copies of
// their stop pipes, or they would never see end-of-file.
Result<std::unique_ptr<ForkedServer>> fork_gpu_server(const CudaTransferBenchOptions& o, const std::string& transport,
                                                      int64_t num_blocks,
                                                      const std::vector<std::unique_ptr<ForkedServer>>& earlier) {
  std::vector<int> inherited;
  for (const auto& e : earlier) inherited.push_back(e->stop_fd);
  return fork_server([&](int port_fd, int stop_fd) { child_serve(o, transport, num_blocks, port_fd, stop_fd); },
                     inherited, "GPU " + transport);
}

// Best-of-repeats seconds of one cudaMemcpyPeerAsync of num_bytes.
Result<double> time_peer_copy(void* dst, int dst_dev, const void* src, int src_dev, size_t num_bytes, int repeats,
                              cudaStream_t stream) {
  cudaEvent_t start, stop;
  BATON_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&start), "cudaEventCreate"));
  BATON_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&stop), "cudaEventCreate"));
  double best = 1e30;
  for (int r = 0; r < repeats + 1; ++r) {  // the first is a warm-up
    cudaEventRecord(start, stream);
    BATON_RETURN_IF_ERROR(
        cuda_status(cudaMemcpyPeerAsync(dst, dst_dev, src, src_dev, num_bytes, stream), "cudaMemcpyPeerAsync"));
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

// Best GB/s of device->pinned host and pinned host->device copies of num_bytes.
Result<std::pair<double, double>> time_pinned_copies(void* dev, size_t num_bytes, int repeats, cudaStream_t stream) {
  void* host = nullptr;
  BATON_RETURN_IF_ERROR(cuda_status(cudaHostAlloc(&host, num_bytes, cudaHostAllocPortable), "cudaHostAlloc"));
  double best[2] = {1e30, 1e30};
  Status st;
  for (int r = 0; r < repeats + 1 && st.is_ok(); ++r) {
    for (int dir = 0; dir < 2 && st.is_ok(); ++dir) {
      Stopwatch sw;
      st = cuda_status(dir == 0 ? cudaMemcpyAsync(host, dev, num_bytes, cudaMemcpyDeviceToHost, stream)
                                : cudaMemcpyAsync(dev, host, num_bytes, cudaMemcpyHostToDevice, stream),
                       "cudaMemcpyAsync (pinned ceiling)");
      if (st.is_ok()) st = cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize (pinned ceiling)");
      if (r > 0) best[dir] = std::min(best[dir], sw.elapsed_s());
    }
  }
  cudaFreeHost(host);
  BATON_RETURN_IF_ERROR(st);
  return std::make_pair(num_bytes / best[0] / 1e9, num_bytes / best[1] / 1e9);
}

// Compares every 7th moved block (copied back to the host) with the pattern.
Status verify_sample(const std::string& transport, const uint8_t* dst_dev, size_t block_bytes,
                     const std::vector<int64_t>& remote, const std::vector<int64_t>& local) {
  std::vector<uint8_t> got(block_bytes), want(block_bytes);
  for (size_t i = 0; i < remote.size(); i += 7) {
    BATON_RETURN_IF_ERROR(cuda_status(cudaMemcpy(got.data(), dst_dev + static_cast<size_t>(local[i]) * block_bytes,
                                                 block_bytes, cudaMemcpyDeviceToHost),
                                      "reading back a moved block"));
    fill_pattern(want.data(), block_bytes, kSeed, static_cast<uint64_t>(remote[i]) * block_bytes / 8);
    if (std::memcmp(got.data(), want.data(), block_bytes) != 0) {
      return data_loss("{} moved remote block {} into local block {} with wrong bytes", transport, remote[i], local[i]);
    }
  }
  return Status::ok();
}

struct RowShape {
  std::string transport;
  int tokens = 0;
  int64_t num_blocks = 0;
  size_t num_runs = 0;
  size_t bytes = 0;
};

struct GpuPair {
  std::string name;
  int src_device = 0, dst_device = 0;
};

// Prints one measured row (times sorted, fastest first) and returns it as JSON.
Json report_row(const RowShape& r, const std::vector<double>& times, double ceiling_gbps, const std::string& ceiling,
                const GpuPair& gpus, int tcp_streams) {
  const double gbps = static_cast<double>(r.bytes) / times.front() / 1e9;
  const bool tcp = r.transport == "tcp";
  std::cout << fmt::format("{:<9} {:>6} {:>6} {:>5} {:>9.1f} {:>9.3f} {:>9.3f} {:>8.2f} {:>10.2f}  {:>5.1f}% of {}\n",
                           tcp ? fmt::format("tcpx{}", tcp_streams) : r.transport, r.tokens, r.num_blocks, r.num_runs,
                           static_cast<double>(r.bytes) / (1 << 20), times.front() * 1e3, times[times.size() / 2] * 1e3,
                           gbps, ceiling_gbps, 100.0 * gbps / ceiling_gbps, ceiling);
  return Json{{"transport", r.transport},
              {"tokens", r.tokens},
              {"num_blocks", r.num_blocks},
              {"num_runs", r.num_runs},
              {"bytes", r.bytes},
              {"best_ms", times.front() * 1e3},
              {"median_ms", times[times.size() / 2] * 1e3},
              {"gbps", gbps},
              {"ceiling", ceiling},
              {"ceiling_gbps", ceiling_gbps},
              {"pct_of_ceiling", 100.0 * gbps / ceiling_gbps},
              {"gpu", gpus.name},
              {"src_device", gpus.src_device},
              {"dst_device", gpus.dst_device},
              {"tcp_streams", tcp ? tcp_streams : 0}};
}

Status run(const CudaTransferBenchOptions& o) {
  for (const auto& t : o.transports) {
    if (t != "cuda_ipc" && t != "tcp" && t != "ucx") {
      return invalid_argument("unknown transport '{}' (cuda_ipc, tcp, ucx)", t);
    }
  }
  const int max_tokens = *std::max_element(o.tokens.begin(), o.tokens.end());
  const int64_t n_max = (max_tokens + o.region.layout.block_size - 1) / o.region.layout.block_size;
  const size_t block_bytes = o.region.block_bytes();

  // Every serving process is forked before this process touches CUDA.
  std::vector<std::unique_ptr<ForkedServer>> servers;
  for (const auto& t : o.transports) {
    BATON_ASSIGN_OR_RETURN(auto child, fork_gpu_server(o, t, n_max, servers));
    servers.push_back(std::move(child));
  }

  int num_devices = 0;
  BATON_RETURN_IF_ERROR(cuda_status(cudaGetDeviceCount(&num_devices), "cudaGetDeviceCount"));
  if (num_devices <= o.src_device) {
    return failed_precondition("bench-transfer --device cuda: GPU {} is not visible ({} GPUs)", o.src_device,
                               num_devices);
  }
  const int dst_device = o.dst_device < num_devices ? o.dst_device : o.src_device;
  cudaDeviceProp prop{};
  BATON_RETURN_IF_ERROR(cuda_status(cudaGetDeviceProperties(&prop, dst_device), "cudaGetDeviceProperties"));
  int can_peer = 0;
  if (dst_device != o.src_device) cudaDeviceCanAccessPeer(&can_peer, dst_device, o.src_device);
  std::cout << fmt::format("GPUs: {} -> {} ({}){}\n", o.src_device, dst_device, prop.name,
                           dst_device == o.src_device ? ", one GPU: both ends on it"
                           : can_peer                 ? ", peer access yes"
                                                      : ", peer access no");

  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(dst_device), "cudaSetDevice"));
  KvRegionDesc dst = o.region;
  dst.layout.num_blocks = static_cast<int>(n_max);
  dst.memory = MemoryKind::kDevice;
  dst.device_id = dst_device;
  void* dst_mem = nullptr;
  BATON_RETURN_IF_ERROR(cuda_status(cudaMalloc(&dst_mem, dst.total_bytes()), "cudaMalloc (KV)"));
  dst.base = dst_mem;
  cudaStream_t stream;
  BATON_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate"));
  CudaDeviceCopier copier(dst_device);  // the tcp reader's staging copier; outlives its engine

  // Ceiling buffers for cuda_ipc: one contiguous copy of the same bytes, GPU
  // to GPU (on one GPU, within it: both processes' KV on the same card).
  void* ceil_src = nullptr;
  void* ceil_dst = nullptr;
  const bool want_ipc = std::find(o.transports.begin(), o.transports.end(), "cuda_ipc") != o.transports.end();
  if (want_ipc) {
    BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(o.src_device), "cudaSetDevice"));
    BATON_RETURN_IF_ERROR(cuda_status(cudaMalloc(&ceil_src, dst.total_bytes()), "cudaMalloc (ceiling)"));
    BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(dst_device), "cudaSetDevice"));
    BATON_RETURN_IF_ERROR(cuda_status(cudaMalloc(&ceil_dst, dst.total_bytes()), "cudaMalloc (ceiling)"));
    if (can_peer != 0) {
      const cudaError_t e = cudaDeviceEnablePeerAccess(o.src_device, 0);
      if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled) return cuda_status(e, "peer access");
      cudaGetLastError();
    }
  }
  if (std::any_of(o.transports.begin(), o.transports.end(), needs_copier)) {
    const size_t bytes = std::min<size_t>(dst.total_bytes(), 256u << 20);
    BATON_ASSIGN_OR_RETURN(auto pinned, time_pinned_copies(dst_mem, bytes, 3, stream));
    std::cout << fmt::format("pinned host<->GPU {} ({} MiB): to host {:.1f} GB/s, to device {:.1f} GB/s\n", dst_device,
                             bytes >> 20, pinned.first, pinned.second);
  }

  std::cout << fmt::format("{:<9} {:>6} {:>6} {:>5} {:>9} {:>9} {:>9} {:>8} {:>10}  {}\n", "transport", "tokens",
                           "blocks", "runs", "MiB", "best_ms", "med_ms", "GB/s", "ceil GB/s", "best vs ceiling");
  Json rows = Json::array();
  for (size_t t = 0; t < o.transports.size(); ++t) {
    const std::string& transport = o.transports[t];
    KvRegionDesc local = dst;
    if (needs_copier(transport)) local.copier = &copier;
    BATON_ASSIGN_OR_RETURN(auto decode, make_engine(transport, "bench-decode-" + transport, o.tcp_streams));
    BATON_RETURN_IF_ERROR(decode->register_memory(local));
    BATON_ASSIGN_OR_RETURN(auto peer, decode->connect_peer("127.0.0.1", servers[t]->port));
    for (int tokens : o.tokens) {
      const int64_t n = (tokens + o.region.layout.block_size - 1) / o.region.layout.block_size;
      const size_t bytes = static_cast<size_t>(n) * block_bytes;
      const auto remote = scattered_block_ids(n, 1);
      const auto local_ids = scattered_block_ids(n, 2);
      BATON_ASSIGN_OR_RETURN(auto runs, coalesce_block_runs(remote, local_ids, n, n));
      BATON_RETURN_IF_ERROR(cuda_status(cudaMemset(dst_mem, 0, dst.total_bytes()), "cudaMemset"));
      BATON_RETURN_IF_ERROR(cuda_status(cudaDeviceSynchronize(), "cudaDeviceSynchronize"));
      ReadOptions warm_opts;
      warm_opts.request_id = "warmup";
      BATON_ASSIGN_OR_RETURN(auto warm, decode->read_blocks(peer.engine_id, remote, local_ids, warm_opts));
      BATON_RETURN_IF_ERROR(warm->wait(300000));
      BATON_RETURN_IF_ERROR(
          verify_sample(transport, static_cast<const uint8_t*>(dst_mem), block_bytes, remote, local_ids));
      std::vector<double> times;
      double ceiling_gbps = 0;
      for (int r = 0; r < std::max(1, o.repeats); ++r) {
        if (needs_copier(transport)) {
          // Measured before each timed read, so both see the same load (ucx
          // rows get tcp's ceiling, to be read against the tcp rows).
          BATON_ASSIGN_OR_RETURN(
              double g, measure_loopback_tcp_gbps(std::min<size_t>(bytes, 1u << 30), 4u << 20, 1, o.tcp_streams));
          ceiling_gbps = std::max(ceiling_gbps, g);
        }
        BATON_ASSIGN_OR_RETURN(auto h, decode->read_blocks(peer.engine_id, remote, local_ids, {}));
        BATON_RETURN_IF_ERROR(h->wait(300000));
        times.push_back(h->elapsed_s());
      }
      std::sort(times.begin(), times.end());
      std::string ceiling = fmt::format("loopback TCP x{}", o.tcp_streams);  // as many sockets as the read uses
      if (transport == "cuda_ipc") {
        ceiling = dst_device == o.src_device ? "on-GPU copy" : "cudaMemcpyPeer";
        BATON_ASSIGN_OR_RETURN(double peer_s, time_peer_copy(ceil_dst, dst_device, ceil_src, o.src_device, bytes,
                                                             std::max(1, o.repeats), stream));
        ceiling_gbps = static_cast<double>(bytes) / peer_s / 1e9;
      }
      rows.push_back(report_row(RowShape{transport, tokens, n, runs.size(), bytes}, times, ceiling_gbps, ceiling,
                                GpuPair{prop.name, o.src_device, dst_device}, o.tcp_streams));
    }
    BATON_RETURN_IF_ERROR(decode->notify_done(peer.engine_id, "bench"));
  }
  cudaStreamDestroy(stream);
  if (ceil_dst != nullptr) cudaFree(ceil_dst);
  cudaFree(dst_mem);
  if (ceil_src != nullptr) {
    cudaSetDevice(o.src_device);
    cudaFree(ceil_src);
  }
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
  if (options.transports.empty()) {
    std::cerr << "bench-transfer: no --transports given\n";
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

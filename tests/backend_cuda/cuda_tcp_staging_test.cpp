// The tcp KV transport with GPU-resident KV on both ends (run on a GPU host by
// scripts/gpu-check.sh): two TransferEngines in this process, each with a
// cudaMalloc'd region on device 0 and its own CudaDeviceCopier, move
// scattered (non-contiguous) blocks byte-exact over loopback TCP, staging
// through pinned buffers that are reused across transfers. Also the copier
// alone: pinned allocations, concurrent copies on its own streams.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "backend_cuda/cuda_test_util.h"
#include "kv_transfer/cuda/cuda_device_copier.h"
#include "kv_transfer/tcp_transport.h"
#include "kv_transfer/transfer_engine.h"

namespace baton {
namespace {

#define ASSERT_CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr << ": " << cudaGetErrorString(cudaGetLastError())

// The CUDA copier, counting the staging buffers it hands out.
class CountingCudaCopier : public CudaDeviceCopier {
 public:
  using CudaDeviceCopier::CudaDeviceCopier;
  Result<void*> alloc_host(size_t n) override {
    ++num_allocs;
    return CudaDeviceCopier::alloc_host(n);
  }
  void free_host(void* p) override {
    ++num_frees;
    CudaDeviceCopier::free_host(p);
  }
  std::atomic<int> num_allocs{0};
  std::atomic<int> num_frees{0};
};

// 4 layers x 2 KV heads x head_dim 64, block 16, bf16: 32 KiB blocks.
KvRegionDesc gpu_region(void* base, int64_t num_blocks, DeviceCopier* copier) {
  KvRegionDesc d;
  d.base = base;
  d.layout.num_blocks = static_cast<int>(num_blocks);
  d.layout.dtype = DType::kBF16;
  d.layout.num_layers = 4;
  d.layout.num_kv_heads = 2;
  d.layout.head_dim = 64;
  d.layout.block_size = 16;
  d.memory = MemoryKind::kDevice;
  d.device_id = 0;
  d.copier = copier;
  return d;
}

std::unique_ptr<TransferEngine> tcp_engine(const std::string& id, size_t staging_bytes) {
  TransferEngineOptions opts;
  opts.engine_id = id;
  opts.num_workers = 2;
  opts.default_timeout_ms = 30000;
  opts.agent.staging_bytes = staging_bytes;
  TcpTransportOptions t;
  t.staging_bytes = staging_bytes;
  auto engine = TransferEngine::create(std::make_unique<TcpTransport>(t), opts);
  EXPECT_TRUE(engine.is_ok()) << engine.status().to_string();
  return std::move(engine).value();
}

struct DeviceMemory {
  void* ptr = nullptr;
  ~DeviceMemory() {
    if (ptr != nullptr) cudaFree(ptr);
  }
};

TEST(CudaTcpStaging, ScatteredBlocksByteExactBetweenGpuRegions) {
  BATON_REQUIRE_GPU();
  ASSERT_CUDA_OK(cudaSetDevice(0));
  constexpr int64_t kBlocks = 96;
  CountingCudaCopier src_copier(0), dst_copier(0);
  const KvRegionDesc shape = gpu_region(nullptr, kBlocks, nullptr);
  const size_t block_bytes = shape.block_bytes();
  const size_t total = shape.total_bytes();
  DeviceMemory src_mem, dst_mem;
  ASSERT_CUDA_OK(cudaMalloc(&src_mem.ptr, total));
  ASSERT_CUDA_OK(cudaMalloc(&dst_mem.ptr, total));
  std::vector<uint8_t> src_host(total);
  std::mt19937_64 rng(1234);
  for (size_t i = 0; i + 8 <= total; i += 8) {
    const uint64_t v = rng();
    std::memcpy(&src_host[i], &v, 8);
  }
  ASSERT_CUDA_OK(cudaMemcpy(src_mem.ptr, src_host.data(), total, cudaMemcpyHostToDevice));
  {
    // 80 KiB staging: 2 whole blocks a chunk, so every read is many chunks.
    auto prefill = tcp_engine("gpu-prefill", 80 << 10);
    ASSERT_TRUE(prefill->register_memory(gpu_region(src_mem.ptr, kBlocks, &src_copier)).is_ok());
    ASSERT_TRUE(prefill->start_agent(nullptr).is_ok());
    auto decode = tcp_engine("gpu-decode", 80 << 10);
    ASSERT_TRUE(decode->register_memory(gpu_region(dst_mem.ptr, kBlocks, &dst_copier)).is_ok());
    auto peer = decode->connect_peer("127.0.0.1", prefill->agent_port());
    ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();

    for (int round = 0; round < 3; ++round) {
      ASSERT_CUDA_OK(cudaMemset(dst_mem.ptr, 0xAB, total));
      ASSERT_CUDA_OK(cudaDeviceSynchronize());
      // Runs of 1..3 blocks at shuffled places on both sides; a third of the
      // destination is never written.
      std::vector<int64_t> remote, local;
      std::vector<int64_t> perm(kBlocks);
      for (int64_t i = 0; i < kBlocks; ++i) perm[i] = i;
      std::shuffle(perm.begin(), perm.end(), rng);
      for (int64_t i = 0; i < kBlocks * 2 / 3; ++i) {
        remote.push_back((i * 37 + round * 11) % kBlocks);
        local.push_back(perm[i]);
      }
      auto h = decode->read_blocks("gpu-prefill", remote, local);
      ASSERT_TRUE(h.is_ok()) << h.status().to_string();
      ASSERT_TRUE((*h)->wait(30000).is_ok()) << (*h)->status().to_string();

      std::vector<uint8_t> got(total);
      ASSERT_CUDA_OK(cudaMemcpy(got.data(), dst_mem.ptr, total, cudaMemcpyDeviceToHost));
      std::vector<bool> written(kBlocks, false);
      for (size_t i = 0; i < remote.size(); ++i) {
        written[local[i]] = true;
        ASSERT_EQ(std::memcmp(&got[local[i] * block_bytes], &src_host[remote[i] * block_bytes], block_bytes), 0)
            << "round " << round << ": remote block " << remote[i] << " -> local block " << local[i];
      }
      for (int64_t b = 0; b < kBlocks; ++b) {
        if (written[b]) continue;
        for (size_t k = 0; k < block_bytes; ++k) {
          ASSERT_EQ(got[b * block_bytes + k], 0xAB) << "round " << round << ": block " << b << " was not asked for";
        }
      }
    }
    // One staging pair a side for all three reads, pinned.
    EXPECT_EQ(src_copier.num_allocs.load(), 2);
    EXPECT_EQ(dst_copier.num_allocs.load(), 2);
    EXPECT_GE(dst_copier.num_streams(), 1);
    EXPECT_LE(dst_copier.num_streams(), 2);  // sequential chunk copies: a stream or two, not one per copy
    EXPECT_EQ(decode->stats().num_transfers_ok, 3u);
  }
  EXPECT_EQ(src_copier.num_frees.load(), 2);
  EXPECT_EQ(dst_copier.num_frees.load(), 2);
}

// A read past the transport's min_stream_bytes (8 MiB) is split over several
// TCP connections, each staging through its own pinned pair: 24 MiB of
// scattered blocks, byte-exact, in as many requests as streams.
TEST(CudaTcpStaging, LargeReadSplitOverStreamsByteExact) {
  BATON_REQUIRE_GPU();
  ASSERT_CUDA_OK(cudaSetDevice(0));
  constexpr int64_t kBlocks = 1024;  // 32 MiB of 32 KiB blocks
  CountingCudaCopier src_copier(0), dst_copier(0);
  const KvRegionDesc shape = gpu_region(nullptr, kBlocks, nullptr);
  const size_t block_bytes = shape.block_bytes();
  const size_t total = shape.total_bytes();
  DeviceMemory src_mem, dst_mem;
  ASSERT_CUDA_OK(cudaMalloc(&src_mem.ptr, total));
  ASSERT_CUDA_OK(cudaMalloc(&dst_mem.ptr, total));
  std::vector<uint8_t> src_host(total);
  std::mt19937_64 rng(99);
  for (size_t i = 0; i + 8 <= total; i += 8) {
    const uint64_t v = rng();
    std::memcpy(&src_host[i], &v, 8);
  }
  ASSERT_CUDA_OK(cudaMemcpy(src_mem.ptr, src_host.data(), total, cudaMemcpyHostToDevice));
  ASSERT_CUDA_OK(cudaMemset(dst_mem.ptr, 0xCD, total));
  ASSERT_CUDA_OK(cudaDeviceSynchronize());
  {
    auto prefill = tcp_engine("gpu-prefill-big", 1u << 20);
    ASSERT_TRUE(prefill->register_memory(gpu_region(src_mem.ptr, kBlocks, &src_copier)).is_ok());
    ASSERT_TRUE(prefill->start_agent(nullptr).is_ok());
    auto decode = tcp_engine("gpu-decode-big", 1u << 20);
    ASSERT_TRUE(decode->register_memory(gpu_region(dst_mem.ptr, kBlocks, &dst_copier)).is_ok());
    ASSERT_TRUE(decode->connect_peer("127.0.0.1", prefill->agent_port()).is_ok());
    // 768 blocks (24 MiB): remote in a scattered order, local shuffled.
    std::vector<int64_t> perm(kBlocks);
    for (int64_t i = 0; i < kBlocks; ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<int64_t> remote, local;
    for (int64_t i = 0; i < 768; ++i) {
      remote.push_back((i * 131) % kBlocks);
      local.push_back(perm[i]);
    }
    auto h = decode->read_blocks("gpu-prefill-big", remote, local);
    ASSERT_TRUE(h.is_ok()) << h.status().to_string();
    ASSERT_TRUE((*h)->wait(60000).is_ok()) << (*h)->status().to_string();
    std::vector<uint8_t> got(total);
    ASSERT_CUDA_OK(cudaMemcpy(got.data(), dst_mem.ptr, total, cudaMemcpyDeviceToHost));
    std::vector<bool> written(kBlocks, false);
    for (size_t i = 0; i < remote.size(); ++i) {
      written[local[i]] = true;
      ASSERT_EQ(std::memcmp(&got[local[i] * block_bytes], &src_host[remote[i] * block_bytes], block_bytes), 0)
          << "remote block " << remote[i] << " -> local block " << local[i];
    }
    for (int64_t b = 0; b < kBlocks; ++b) {
      if (!written[b]) {
        ASSERT_EQ(got[b * block_bytes], 0xCD) << "block " << b << " was not asked for";
      }
    }
    // More than one stream (each a pinned pair, 2 buffers) on the reading side, at most the default 4.
    EXPECT_GT(dst_copier.num_allocs.load(), 2);
    EXPECT_LE(dst_copier.num_allocs.load(), 2 * TcpTransportOptions{}.num_streams);
  }
  EXPECT_EQ(dst_copier.num_frees.load(), dst_copier.num_allocs.load());
  EXPECT_EQ(src_copier.num_frees.load(), src_copier.num_allocs.load());
}

TEST(CudaTcpStaging, CopierPinsAndCopiesConcurrently) {
  BATON_REQUIRE_GPU();
  CudaDeviceCopier copier(0);
  EXPECT_TRUE(copier.pins_host());
  constexpr size_t kBytes = 4u << 20;
  constexpr int kThreads = 4;
  ASSERT_CUDA_OK(cudaSetDevice(0));
  DeviceMemory dev;
  ASSERT_CUDA_OK(cudaMalloc(&dev.ptr, kBytes * kThreads));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto up = copier.alloc_host(kBytes);
      auto down = copier.alloc_host(kBytes);
      if (!up.is_ok() || !down.is_ok()) {
        ++failures;
        return;
      }
      cudaPointerAttributes attr{};
      if (cudaPointerGetAttributes(&attr, *up) != cudaSuccess || attr.type != cudaMemoryTypeHost) ++failures;
      auto* u = static_cast<uint8_t*>(*up);
      auto* d = static_cast<uint8_t*>(*down);
      uint8_t* slot = static_cast<uint8_t*>(dev.ptr) + t * kBytes;
      for (int i = 0; i < 10; ++i) {
        std::memset(u, t * 16 + i, kBytes);
        std::memset(d, 0, kBytes);
        if (!copier.to_device(slot, u, kBytes).is_ok() || !copier.to_host(d, slot, kBytes).is_ok() ||
            std::memcmp(u, d, kBytes) != 0) {
          ++failures;
        }
      }
      copier.free_host(*up);
      copier.free_host(*down);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(copier.num_streams(), kThreads);
  // A device that does not exist is an error naming the call, not a crash
  // (a non-sticky error: the context stays usable for the other tests).
  CudaDeviceCopier missing(4096);
  uint8_t host[16] = {};
  Status bad = missing.to_device(dev.ptr, host, sizeof host);
  EXPECT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("cudaSetDevice"), std::string::npos) << bad.message();
  EXPECT_FALSE(missing.alloc_host(64).is_ok());
  cudaGetLastError();
  ASSERT_CUDA_OK(cudaSetDevice(0));
}

}  // namespace
}  // namespace baton

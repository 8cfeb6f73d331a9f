// The tcp transport's staging path for device KV, driven on the CPU by a
// copier that counts its calls (host memory standing in for device memory),
// and SharedMemoryBuffer's errors.
#include <atomic>

#include <gtest/gtest.h>

#include "kv_transfer/agent_client.h"
#include "kv_transfer/engine_pair.h"
#include "kv_transfer/shm_buffer.h"
#include "kv_transfer/tcp_transport.h"
#include "kv_transfer/transport_registry.h"

namespace baton {
namespace {

using testing::TestRegion;

class CountingCopier : public DeviceCopier {
 public:
  Status to_host(void* dst, const void* src, size_t n) override {
    ++num_to_host;
    std::memcpy(dst, src, n);
    return Status::ok();
  }
  Status to_device(void* dst, const void* src, size_t n) override {
    ++num_to_device;
    std::memcpy(dst, src, n);
    return Status::ok();
  }
  Result<void*> alloc_host(size_t n) override {
    ++num_allocs;
    return DeviceCopier::alloc_host(n);
  }
  void free_host(void* p) override {
    ++num_frees;
    DeviceCopier::free_host(p);
  }
  std::atomic<int> num_to_host{0};
  std::atomic<int> num_to_device{0};
  std::atomic<int> num_allocs{0};
  std::atomic<int> num_frees{0};
};

KvRegionDesc as_device(KvRegionDesc d, DeviceCopier* copier) {
  d.memory = MemoryKind::kDevice;
  d.device_id = 0;
  d.copier = copier;
  return d;
}

TEST(TcpStaging, DeviceRegionsGoThroughTheCopier) {
  TestRegion src = TestRegion::heap(testing::small_shape(64));
  src.fill_random(99);
  TestRegion dst = TestRegion::heap(testing::small_shape(64));
  CountingCopier src_copier, dst_copier;

  auto prefill = testing::make_engine("tcp", "prefill-g");
  ASSERT_TRUE(prefill->register_memory(as_device(src.desc(), &src_copier)).is_ok());
  ASSERT_TRUE(prefill->start_agent(nullptr).is_ok());
  EXPECT_EQ(prefill->local_descriptor().memory, MemoryKind::kDevice);
  auto decode = testing::make_engine("tcp", "decode-g");
  ASSERT_TRUE(decode->register_memory(as_device(dst.desc(), &dst_copier)).is_ok());
  auto peer = decode->connect_peer("127.0.0.1", prefill->agent_port());
  ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();

  std::vector<int64_t> remote, local;
  for (int i = 0; i < 40; ++i) {
    remote.push_back((i * 11) % 64);
    local.push_back(63 - i);
  }
  auto h = decode->read_blocks("prefill-g", remote, local);
  ASSERT_TRUE(h.is_ok());
  ASSERT_TRUE((*h)->wait(10000).is_ok()) << (*h)->status().to_string();
  for (size_t i = 0; i < remote.size(); ++i) {
    EXPECT_TRUE(dst.block_equals(local[i], src, remote[i])) << i;
  }
  EXPECT_GT(src_copier.num_to_host.load(), 0);
  EXPECT_GT(dst_copier.num_to_device.load(), 0);

  // Checksums need host memory: refused up front, with a clear error.
  auto sum = decode->read_blocks("prefill-g", {1}, {1}, {.checksum = true});
  EXPECT_EQ(sum.status().code(), StatusCode::kUnimplemented);
}

std::unique_ptr<TransferEngine> tcp_engine(const std::string& id, size_t staging_bytes, int max_pairs) {
  TransferEngineOptions opts;
  opts.engine_id = id;
  opts.model = "tiny";
  opts.num_workers = 4;
  opts.default_timeout_ms = 10000;
  opts.agent.staging_bytes = staging_bytes;
  opts.agent.max_staging_pairs = max_pairs;
  auto engine = TransferEngine::create(std::make_unique<TcpTransport>(TcpTransportOptions{
                                           .staging_bytes = staging_bytes, .max_staging_pairs = max_pairs}),
                                       opts);
  EXPECT_TRUE(engine.is_ok()) << engine.status().to_string();
  return std::move(engine).value();
}

// Sequential transfers of a "device" region stage through the same pair of
// buffers on both sides: each side allocates one pair (two buffers) for all
// of them. Concurrent transfers take at most max_pairs pairs per side, and
// every buffer goes back to its copier when the engines go.
TEST(TcpStaging, StagingBuffersAreReusedAcrossTransfers) {
  TestRegion src = TestRegion::heap(testing::small_shape(64));  // 1 KiB blocks
  src.fill_random(7);
  TestRegion dst = TestRegion::heap(testing::small_shape(64));
  CountingCopier src_copier, dst_copier;
  {
    // 4 KiB staging: 4 blocks a chunk, so a transfer is many chunks.
    auto prefill = tcp_engine("prefill-r", 4096, 2);
    ASSERT_TRUE(prefill->register_memory(as_device(src.desc(), &src_copier)).is_ok());
    ASSERT_TRUE(prefill->start_agent(nullptr).is_ok());
    auto decode = tcp_engine("decode-r", 4096, 2);
    ASSERT_TRUE(decode->register_memory(as_device(dst.desc(), &dst_copier)).is_ok());
    ASSERT_TRUE(decode->connect_peer("127.0.0.1", prefill->agent_port()).is_ok());

    for (int round = 0; round < 5; ++round) {
      dst.fill(0);
      std::vector<int64_t> remote, local;
      for (int i = 0; i < 30; ++i) {
        remote.push_back((i * 7 + round) % 64);
        local.push_back((i * 5 + 3 * round) % 64);
      }
      auto h = decode->read_blocks("prefill-r", remote, local);
      ASSERT_TRUE(h.is_ok());
      ASSERT_TRUE((*h)->wait(10000).is_ok()) << (*h)->status().to_string();
      for (size_t i = 0; i < remote.size(); ++i) {
        EXPECT_TRUE(dst.block_equals(local[i], src, remote[i])) << "round " << round << " block " << i;
      }
    }
    EXPECT_EQ(src_copier.num_allocs.load(), 2) << "the serving side allocated staging per transfer";
    EXPECT_EQ(dst_copier.num_allocs.load(), 2) << "the reading side allocated staging per transfer";
    EXPECT_GE(src_copier.num_to_host.load(), 5 * 8);  // 30 blocks in chunks of <= 4, each round
    EXPECT_GE(dst_copier.num_to_device.load(), 5 * 8);

    // Eight concurrent reads (4 workers here) into disjoint blocks.
    std::vector<std::shared_ptr<TransferHandle>> handles;
    for (int r = 0; r < 8; ++r) {
      std::vector<int64_t> remote, local;
      for (int i = 0; i < 8; ++i) {
        remote.push_back((r * 8 + i * 3) % 64);
        local.push_back(r * 8 + i);
      }
      auto h = decode->read_blocks("prefill-r", remote, local);
      ASSERT_TRUE(h.is_ok());
      handles.push_back(*h);
    }
    for (int r = 0; r < 8; ++r) {
      ASSERT_TRUE(handles[r]->wait(10000).is_ok()) << handles[r]->status().to_string();
      for (int i = 0; i < 8; ++i) EXPECT_TRUE(dst.block_equals(r * 8 + i, src, (r * 8 + i * 3) % 64));
    }
    EXPECT_LE(src_copier.num_allocs.load(), 2 * 2);  // at most max_pairs pairs
    EXPECT_LE(dst_copier.num_allocs.load(), 2 * 2);
  }
  EXPECT_EQ(src_copier.num_frees.load(), src_copier.num_allocs.load());
  EXPECT_EQ(dst_copier.num_frees.load(), dst_copier.num_allocs.load());
}

TEST(TcpStaging, BadStagingOptionsRefused) {
  TestRegion region = TestRegion::heap(testing::small_shape(8));
  CountingCopier copier;
  TcpTransport no_bytes(TcpTransportOptions{.staging_bytes = 0});
  PeerDescriptor desc;
  EXPECT_EQ(no_bytes.register_local(as_device(region.desc(), &copier), desc).code(), StatusCode::kInvalidArgument);
  TcpTransport no_pairs(TcpTransportOptions{.max_staging_pairs = 0});
  EXPECT_EQ(no_pairs.register_local(as_device(region.desc(), &copier), desc).code(), StatusCode::kInvalidArgument);
  KvAgentOptions agent_opts;
  agent_opts.max_staging_pairs = 0;
  auto agent = KvAgent::start(as_device(region.desc(), &copier), desc, nullptr, agent_opts);
  EXPECT_EQ(agent.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(agent.status().message().find("max_staging_pairs"), std::string::npos) << agent.status().message();
}

// The reading side stages a device region only through a pool; without one
// (or without a copier) it refuses before asking anything of the peer.
TEST(TcpStaging, DeviceReadWithoutPoolOrCopierRefused) {
  TestRegion region = TestRegion::heap(testing::small_shape(8));
  CountingCopier copier;
  AgentClient client("127.0.0.1", 1);  // nothing listens: a refusal must come first
  const std::vector<BlockRun> runs = {{0, 0, 2}};
  ReadContext ctx{deadline_after_ms(1000), nullptr};
  auto no_pool = client.read_blocks(runs, as_device(region.desc(), &copier), false, ctx, nullptr);
  EXPECT_EQ(no_pool.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(no_pool.status().message().find("staging pool"), std::string::npos) << no_pool.status().message();
  StagingPool pool(&copier, 4096, 1);
  auto no_copier = client.read_blocks(runs, as_device(region.desc(), nullptr), false, ctx, &pool);
  EXPECT_EQ(no_copier.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(copier.num_allocs.load(), 0);
}

TEST(TcpStaging, DeviceRegionWithoutCopierRefused) {
  TestRegion region = TestRegion::heap(testing::small_shape(8));
  auto engine = testing::make_engine("tcp", "prefill-h");
  Status st = engine->register_memory(as_device(region.desc(), nullptr));
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("copier"), std::string::npos) << st.message();
}

// The KV connector asks the registry for the copier of a GPU-resident cache
// (the CUDA build registers one); without one the error says what is missing.
TEST(DeviceCopierRegistry, ClearErrorWithoutOneThenTheRegisteredFactory) {
  auto none = make_device_copier(0);  // this test binary links no CUDA library
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(none.status().message().find("CUDA build"), std::string::npos) << none.status().message();
  std::atomic<int> asked_device{-1};
  register_device_copier_factory([&](int device_id) -> Result<std::unique_ptr<DeviceCopier>> {
    asked_device = device_id;
    return std::unique_ptr<DeviceCopier>(std::make_unique<CountingCopier>());
  });
  auto made = make_device_copier(3);
  ASSERT_TRUE(made.is_ok()) << made.status().message();
  EXPECT_EQ(asked_device.load(), 3);
  int src = 42, dst = 0;
  ASSERT_TRUE((*made)->to_host(&dst, &src, sizeof src).is_ok());
  EXPECT_EQ(dst, 42);
  register_device_copier_factory(nullptr);  // leave the registry as found
  EXPECT_FALSE(make_device_copier(0).is_ok());
}

TEST(Transports, HostOnlyTransportsRefuseDeviceMemory) {
  TestRegion region = TestRegion::heap(testing::small_shape(8));
  CountingCopier copier;
  for (const char* name : {"local", "shm"}) {
    auto engine = testing::make_engine(name, "e");
    Status st = engine->register_memory(as_device(region.desc(), &copier));
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << name;
    EXPECT_NE(st.message().find("device memory"), std::string::npos) << st.message();
  }
}

TEST(SharedMemoryBuffer, Errors) {
  EXPECT_EQ(SharedMemoryBuffer::create("no-slash", 16).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedMemoryBuffer::create("/a/b", 16).status().code(), StatusCode::kInvalidArgument);
  const std::string name = SharedMemoryBuffer::unique_name("t");
  auto missing = SharedMemoryBuffer::open_read_only(name, 16);
  EXPECT_EQ(missing.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(missing.status().message().find(name), std::string::npos);
  {
    auto buf = SharedMemoryBuffer::create(name, 4096);
    ASSERT_TRUE(buf.is_ok()) << buf.status().to_string();
    EXPECT_EQ(SharedMemoryBuffer::create(name, 4096).status().code(), StatusCode::kUnavailable);
    auto small = SharedMemoryBuffer::open_read_only(name, 8192);
    EXPECT_EQ(small.status().code(), StatusCode::kFailedPrecondition);
    static_cast<uint8_t*>((*buf)->data())[100] = 77;
    auto view = SharedMemoryBuffer::open_read_only(name, 4096);
    ASSERT_TRUE(view.is_ok());
    EXPECT_EQ(static_cast<const uint8_t*>((*view)->data())[100], 77);
  }
  // The creator unlinked it on destruction.
  EXPECT_FALSE(SharedMemoryBuffer::open_read_only(name, 16).is_ok());
}

}  // namespace
}  // namespace baton

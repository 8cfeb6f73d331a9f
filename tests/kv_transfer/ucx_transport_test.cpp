// The ucx transport's own guarantees (the shared conformance cases run in
// transfer_engine_test and cross_process_test over ucx_tcp and ucx_sm):
// every read is checked by the serving side (access token, block bounds,
// lease), large reads split into requests, device KV staged through host
// memory when UCX cannot move CUDA memory, and --kv-require's refusals.
#include "kv_transfer/ucx_transport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>

#include "common/clock.h"
#include "kv_transfer/checksum.h"
#include "kv_transfer/engine_pair.h"
#include "kv_transfer/ucx_inventory.h"

namespace baton {
namespace {

using testing::TestRegion;

constexpr int64_t kRemoteBlocks = 64;
constexpr int64_t kLocalBlocks = 48;

// A serving ucx transport (UCX over tcp) and a reading one, without agents:
// the reader gets the serving descriptor directly, as after a handshake.
class UcxTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = TestRegion::heap(testing::small_shape(kRemoteBlocks));
    src_.fill_random(3);
    dst_ = TestRegion::heap(testing::small_shape(kLocalBlocks));
    dst_.fill(0xEE);
  }

  // Starts serving src_ (with `check`) and opens a link from dst_.
  void open(GrantCheck check = {}, UcxTransportOptions options = {.tls = "tcp"}) {
    server_ = std::make_unique<UcxTransport>(options);
    served_ = PeerDescriptor::from_region(src_.desc(), "prefill-u", "tiny");
    ASSERT_TRUE(server_->register_local(src_.desc(), served_).is_ok());
    Status st = server_->start_serving(served_, std::move(check));
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    reader_ = std::make_unique<UcxTransport>(options);
    PeerDescriptor mine = PeerDescriptor::from_region(dst_.desc(), "decode-u", "tiny");
    ASSERT_TRUE(reader_->register_local(dst_.desc(), mine).is_ok());
    auto link = reader_->connect(served_);
    ASSERT_TRUE(link.is_ok()) << link.status().to_string();
    link_ = std::move(link).value();
  }

  Result<std::vector<uint64_t>> read(const std::vector<BlockRun>& runs, const KvGrant* grant = nullptr,
                                     bool checksums = false) {
    ReadContext ctx{deadline_after_ms(10000), nullptr, grant};
    return link_->read(runs, checksums, ctx);
  }

  bool untouched() const {
    for (int64_t b = 0; b < kLocalBlocks; ++b) {
      for (size_t i = 0; i < dst_.desc().block_bytes(); ++i) {
        if (dst_.block(b)[i] != 0xEE) return false;
      }
    }
    return true;
  }

  TestRegion src_, dst_;
  PeerDescriptor served_;
  std::unique_ptr<UcxTransport> server_, reader_;
  std::unique_ptr<PeerLink> link_;
};

TEST_F(UcxTransportTest, ReadsScatteredRunsWithChecksumsFromTheServingSide) {
  ASSERT_NO_FATAL_FAILURE(open());
  auto sums = read({{10, 0, 3}, {60, 5, 4}, {1, 20, 1}}, nullptr, /*checksums=*/true);
  ASSERT_TRUE(sums.is_ok()) << sums.status().to_string();
  ASSERT_EQ(sums->size(), 8u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(dst_.block_equals(i, src_, 10 + i));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(dst_.block_equals(5 + i, src_, 60 + i));
  EXPECT_TRUE(dst_.block_equals(20, src_, 1));
  EXPECT_EQ((*sums)[3], block_checksum(src_.block(60), src_.desc().block_bytes()));
  EXPECT_EQ(server_->server()->stats().num_reads, 3u);  // one request a run
}

TEST_F(UcxTransportTest, ReadWithoutTheAccessTokenIsRefused) {
  ASSERT_NO_FATAL_FAILURE(open());
  PeerDescriptor forged = served_;
  forged.transport_params["ucx_access_token"] = std::string(32, '0');
  auto link = reader_->connect(forged);
  ASSERT_TRUE(link.is_ok()) << link.status().to_string();
  ReadContext ctx{deadline_after_ms(10000), nullptr, nullptr};
  auto got = (*link)->read({{0, 0, 4}}, false, ctx);
  EXPECT_EQ(got.status().code(), StatusCode::kPermissionDenied) << got.status().to_string();
  EXPECT_TRUE(untouched());
  EXPECT_EQ(server_->server()->stats().num_refused, 1u);
  EXPECT_EQ(server_->server()->stats().num_bytes_served, 0u);
}

TEST_F(UcxTransportTest, ServerRefusesRunsPastTheRegion) {
  ASSERT_NO_FATAL_FAILURE(open());
  // The engine checks ids before a read; a link used directly (as a peer
  // could) is still held inside the region by the server.
  auto got = read({{kRemoteBlocks - 2, 0, 4}});
  EXPECT_EQ(got.status().code(), StatusCode::kOutOfRange) << got.status().to_string();
  auto past = read({{kRemoteBlocks, 0, 1}});
  EXPECT_EQ(past.status().code(), StatusCode::kOutOfRange) << past.status().to_string();
  EXPECT_TRUE(untouched());
  EXPECT_TRUE(read({{0, 0, 1}}).is_ok());  // the link survives a refused read
}

TEST_F(UcxTransportTest, LeaseIsCheckedOnEveryRead) {
  std::atomic<int> checks{0};
  ASSERT_NO_FATAL_FAILURE(open([&](const KvGrant& grant, const std::vector<BlockRun>* runs) -> Status {
    ++checks;
    if (grant.request_id != "r1" || grant.lease_token != "t1") return permission_denied("no such lease");
    for (const auto& run : *runs) {
      if (run.remote_first + run.num_blocks > 8) return permission_denied("block outside the lease");
    }
    return Status::ok();
  }));
  const KvGrant good{"r1", "t1"}, forged{"r1", "guess"};
  EXPECT_TRUE(read({{2, 0, 3}}, &good).is_ok());
  EXPECT_EQ(read({{2, 3, 1}}, &forged).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(read({{2, 3, 1}}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(read({{7, 3, 2}}, &good).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(checks.load(), 4);
  EXPECT_TRUE(dst_.block_equals(0, src_, 2));
  EXPECT_EQ(dst_.block(3)[0], 0xEE);
}

TEST_F(UcxTransportTest, LargeReadsSplitIntoSeveralRequests) {
  ASSERT_NO_FATAL_FAILURE(open({}, {.tls = "tcp", .max_request_bytes = 3 * src_.desc().block_bytes()}));
  auto got = read({{0, 0, 10}, {30, 10, 7}}, nullptr, /*checksums=*/true);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(got->size(), 17u);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(dst_.block_equals(i, src_, i));
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(dst_.block_equals(10 + i, src_, 30 + i));
  EXPECT_EQ(server_->server()->stats().num_reads, 7u);  // runs of 10 and 7 blocks in requests of at most 3
}

// A host copier standing in for a GPU: UCX here has no CUDA transports, so
// device KV goes through host staging on both sides.
class MemcpyCopier : public DeviceCopier {
 public:
  Status to_host(void* dst, const void* src, size_t n) override {
    ++num_copies;
    std::memcpy(dst, src, n);
    return Status::ok();
  }
  Status to_device(void* dst, const void* src, size_t n) override {
    ++num_copies;
    std::memcpy(dst, src, n);
    return Status::ok();
  }
  std::atomic<int> num_copies{0};
};

TEST_F(UcxTransportTest, DeviceKvIsStagedThroughHostMemoryWithoutCudaInUcx) {
  MemcpyCopier src_copier, dst_copier;
  KvRegionDesc src_dev = src_.desc(), dst_dev = dst_.desc();
  src_dev.memory = dst_dev.memory = MemoryKind::kDevice;
  src_dev.device_id = dst_dev.device_id = 0;
  src_dev.copier = &src_copier;
  dst_dev.copier = &dst_copier;
  UcxTransport server({.tls = "tcp"}), reader({.tls = "tcp"});
  PeerDescriptor served = PeerDescriptor::from_region(src_dev, "prefill-d", "tiny");
  ASSERT_TRUE(server.register_local(src_dev, served).is_ok());
  ASSERT_TRUE(server.start_serving(served, {}).is_ok());
  PeerDescriptor mine = PeerDescriptor::from_region(dst_dev, "decode-d", "tiny");
  ASSERT_TRUE(reader.register_local(dst_dev, mine).is_ok());
  auto link = reader.connect(served);
  ASSERT_TRUE(link.is_ok()) << link.status().to_string();
  ReadContext ctx{deadline_after_ms(10000), nullptr, nullptr};
  auto got = (*link)->read({{4, 1, 2}, {40, 30, 3}}, false, ctx);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(dst_.block_equals(1 + i, src_, 4 + i));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(dst_.block_equals(30 + i, src_, 40 + i));
  EXPECT_EQ(src_copier.num_copies.load(), 2);  // one per run, to the host
  EXPECT_EQ(dst_copier.num_copies.load(), 2);  // one per run, to the device
}

TEST_F(UcxTransportTest, AnUnreachablePeerFailsFastNamingUcx) {
  src_ = TestRegion::heap(testing::small_shape(kRemoteBlocks));
  UcxTransport reader({.tls = "tcp"});
  PeerDescriptor mine = PeerDescriptor::from_region(dst_.desc(), "decode-x", "tiny");
  ASSERT_TRUE(reader.register_local(dst_.desc(), mine).is_ok());
  PeerDescriptor none = PeerDescriptor::from_region(src_.desc(), "prefill-x", "tiny");
  auto link = reader.connect(none);  // no ucx address in its descriptor
  EXPECT_EQ(link.status().code(), StatusCode::kFailedPrecondition);
  none.transport_params["ucx_address"] = "zz";
  none.transport_params["ucx_access_token"] = "t";
  EXPECT_EQ(reader.connect(none).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(UcxTransportTest, NoUcxTransportInCommonFailsTheConnectAtOnce) {
  UcxTransport server({.tls = "sm"}), reader({.tls = "tcp"});
  PeerDescriptor served = PeerDescriptor::from_region(src_.desc(), "prefill-sm", "tiny");
  ASSERT_TRUE(server.register_local(src_.desc(), served).is_ok());
  ASSERT_TRUE(server.start_serving(served, {}).is_ok());
  PeerDescriptor mine = PeerDescriptor::from_region(dst_.desc(), "decode-tcp", "tiny");
  ASSERT_TRUE(reader.register_local(dst_.desc(), mine).is_ok());
  Stopwatch sw;
  auto link = reader.connect(served);
  EXPECT_EQ(link.status().code(), StatusCode::kUnavailable) << link.status().to_string();
  EXPECT_NE(link.status().message().find("no UCX transport in common"), std::string::npos);
  EXPECT_LT(sw.elapsed_ms(), 5000.0);
}

TEST(KvRequire, RdmaWithoutRdmaRefusesNamingWhatWasFound) {
  const std::vector<UcxResource> found = {
      {"tcp", "eth0", "tcp"}, {"posix", "memory", "sm"}, {"self", "memory", "self"}};
  auto r = check_kv_require("ucx", "rdma", "", found);
  ASSERT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("no rdma transport"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("tcp/eth0, posix/memory"), std::string::npos) << r.status().message();
  auto tcp = check_kv_require("tcp", "rdma", "", {});
  EXPECT_EQ(tcp.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(tcp.status().message().find("--kv-transport tcp"), std::string::npos);
  EXPECT_EQ(check_kv_require("ucx", "fast", "", found).status().code(), StatusCode::kInvalidArgument);
}

TEST(KvRequire, RdmaFoundConfinesUcxToIt) {
  const std::vector<UcxResource> found = {{"rc_mlx5", "mlx5_0:1", "rdma"},
                                          {"dc_mlx5", "mlx5_0:1", "rdma"},
                                          {"tcp", "eth0", "tcp"},
                                          {"cuda_copy", "cuda", "gpu"}};
  auto r = check_kv_require("ucx", "rdma", "", found);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->ucx_tls, "cuda_copy,dc_mlx5,rc_mlx5");
  // UCX_TLS already set by the operator: kept, and it must allow the class.
  auto set = check_kv_require("ucx", "rdma", "rc", found);
  ASSERT_TRUE(set.is_ok());
  EXPECT_EQ(set->ucx_tls, "");
  EXPECT_EQ(check_kv_require("ucx", "rdma", "tcp", found).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(check_kv_require("ucx", "rdma", "^rc,dc", found).status().code(), StatusCode::kFailedPrecondition);
}

TEST(KvRequire, ThisHostsInventoryIsListed) {
  auto resources = list_ucx_resources();
  ASSERT_TRUE(resources.is_ok()) << resources.status().to_string();
  bool tcp = false;
  for (const auto& r : *resources) tcp = tcp || r.transport == "tcp";
  EXPECT_TRUE(tcp) << "UCX found no tcp transport on this host";
  EXPECT_TRUE(ucx_tls_allows("sm", "posix"));
  EXPECT_FALSE(ucx_tls_allows("sm", "tcp"));
  EXPECT_TRUE(ucx_tls_allows("", "tcp"));
}

}  // namespace
}  // namespace baton

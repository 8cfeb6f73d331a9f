// FP8 KV (--kv-cache-dtype fp8) through the transfer engine: the peer
// descriptor carries F8_E4M3 (it round-trips through the handshake's JSON),
// the blocks move byte-exact over shm and tcp at half the bytes of the same
// shape in 16-bit values, and a peer of another KV dtype is refused with
// both dtypes named.
#include <gtest/gtest.h>

#include "kv_transfer/engine_pair.h"
#include "kv_transfer/peer_descriptor.h"

namespace baton {
namespace {

using testing::DoneLog;
using testing::TestRegion;

KvRegionDesc fp8_shape(int64_t num_blocks) {
  KvRegionDesc d = testing::small_shape(num_blocks);
  d.layout.dtype = DType::kF8E4M3;
  return d;
}

TEST(KvFp8Descriptor, RoundTripsThroughJson) {
  PeerDescriptor d = PeerDescriptor::from_region(fp8_shape(8), "prefill-0", "m");
  Result<PeerDescriptor> back = PeerDescriptor::from_json(d.to_json());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->dtype, DType::kF8E4M3);
  EXPECT_EQ(back->block_bytes, fp8_shape(8).block_bytes());
  EXPECT_TRUE(check_compatible(d, *back).is_ok());
}

class KvFp8TransportTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KvFp8TransportTest, MovesFp8BlocksByteExactAtHalfTheBytes) {
  TestRegion src = TestRegion::shm(fp8_shape(32));
  src.fill_random(11);
  TestRegion dst = TestRegion::heap(fp8_shape(16));
  dst.fill(0xEE);
  DoneLog log;
  auto prefill = testing::make_engine(GetParam(), "prefill-f8");
  ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill, src, &log));
  auto decode = testing::make_engine(GetParam(), "decode-f8", /*checksum=*/true);
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  auto peer = decode->connect_peer("127.0.0.1", prefill->agent_port());
  ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();
  EXPECT_EQ(peer->dtype, DType::kF8E4M3);
  const std::vector<int64_t> remote = {3, 4, 5, 30, 0, 17};
  const std::vector<int64_t> local = {0, 1, 2, 9, 15, 7};
  auto h = decode->read_blocks("prefill-f8", remote, local, {.request_id = "req-f8"});
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  Status st = (*h)->wait(10000);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  for (size_t i = 0; i < remote.size(); ++i)
    EXPECT_TRUE(dst.block_equals(local[i], src, remote[i])) << "block " << remote[i];
  const size_t f16_block_bytes = testing::small_shape(1).block_bytes();
  EXPECT_EQ(fp8_shape(1).block_bytes() * 2, f16_block_bytes);
  EXPECT_EQ((*h)->num_bytes(), remote.size() * f16_block_bytes / 2);
  ASSERT_TRUE(decode->notify_done("prefill-f8", "req-f8").is_ok());
}

INSTANTIATE_TEST_SUITE_P(Cpu, KvFp8TransportTest, ::testing::Values("shm", "tcp"),
                         [](const auto& info) { return info.param; });

// A prefill caching F8_E4M3 and a decode caching BF16, either way round: the
// decode's connect is refused naming the KV cache dtype and both values.
TEST(KvFp8Transport, MixedKvDtypesRefusedNamingBoth) {
  for (bool prefill_fp8 : {true, false}) {
    KvRegionDesc bf16 = testing::small_shape(8);
    bf16.layout.dtype = DType::kBF16;
    TestRegion src = TestRegion::heap(prefill_fp8 ? fp8_shape(8) : bf16);
    TestRegion dst = TestRegion::heap(prefill_fp8 ? bf16 : fp8_shape(8));
    auto prefill = testing::make_engine("tcp", "prefill-mixed");
    ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill, src, nullptr));
    auto decode = testing::make_engine("tcp", "decode-mixed");
    ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
    auto peer = decode->connect_peer("127.0.0.1", prefill->agent_port());
    ASSERT_FALSE(peer.is_ok());
    EXPECT_EQ(peer.status().code(), StatusCode::kFailedPrecondition);
    const std::string want = prefill_fp8 ? "KV cache dtype (--kv-cache-dtype) differs (local BF16, remote F8_E4M3)"
                                         : "KV cache dtype (--kv-cache-dtype) differs (local F8_E4M3, remote BF16)";
    EXPECT_NE(peer.status().message().find(want), std::string::npos) << peer.status().message();
  }
}

}  // namespace
}  // namespace baton

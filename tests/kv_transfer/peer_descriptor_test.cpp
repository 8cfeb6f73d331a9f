#include "kv_transfer/peer_descriptor.h"

#include <gtest/gtest.h>

#include "kv_transfer/kv_test_util.h"

namespace baton {
namespace {

PeerDescriptor make_desc(const std::string& id) {
  std::vector<uint8_t> mem(1);
  KvRegionDesc r = testing::small_shape(8);
  r.base = mem.data();
  PeerDescriptor d = PeerDescriptor::from_region(r, id, "tiny-llama");
  d.transport = "tcp";
  d.host = "127.0.0.1";
  d.port = 5555;
  return d;
}

TEST(PeerDescriptor, JsonRoundTrip) {
  PeerDescriptor d = make_desc("prefill-0");
  d.transport_params["shm_name"] = "/x";
  auto back = PeerDescriptor::from_json(d.to_json());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->engine_id, "prefill-0");
  EXPECT_EQ(back->port, 5555);
  EXPECT_EQ(back->dtype, DType::kF16);
  EXPECT_EQ(back->block_bytes, d.block_bytes);
  EXPECT_EQ(back->compat_hash, d.compat_hash);
  EXPECT_EQ(back->transport_params["shm_name"], "/x");
  EXPECT_TRUE(check_compatible(d, *back).is_ok());
}

TEST(PeerDescriptor, MissingFieldIsNamed) {
  Json j = make_desc("p").to_json();
  j.erase("head_dim");
  auto back = PeerDescriptor::from_json(j);
  ASSERT_FALSE(back.is_ok());
  EXPECT_NE(back.status().message().find("head_dim"), std::string::npos);
}

struct MismatchCase {
  const char* field;
  std::function<void(PeerDescriptor&)> change;
};

TEST(PeerDescriptor, MismatchNamesTheField) {
  const std::vector<MismatchCase> cases = {
      {"num_layers", [](PeerDescriptor& d) { d.num_layers = 3; }},
      {"num_kv_heads", [](PeerDescriptor& d) { d.num_kv_heads = 4; }},
      {"head_dim", [](PeerDescriptor& d) { d.head_dim = 16; }},
      {"block_size", [](PeerDescriptor& d) { d.block_size = 16; }},
      {"dtype", [](PeerDescriptor& d) { d.dtype = DType::kBF16; }},
      {"model", [](PeerDescriptor& d) { d.model = "other-model"; }},
      {"transport", [](PeerDescriptor& d) { d.transport = "shm"; }},
      {"layout", [](PeerDescriptor& d) { d.layout = "layers,blocks"; }},
      {"protocol_version", [](PeerDescriptor& d) { d.protocol_version = 99; }},
  };
  const PeerDescriptor local = make_desc("decode-0");
  for (const auto& c : cases) {
    PeerDescriptor remote = make_desc("prefill-0");
    c.change(remote);
    remote.compat_hash = remote.compute_compat_hash();
    Status st = check_compatible(local, remote);
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << c.field;
    EXPECT_NE(st.message().find(c.field), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("prefill-0"), std::string::npos) << st.message();
  }
}

TEST(PeerDescriptor, TamperedHashRefused) {
  const PeerDescriptor local = make_desc("decode-0");
  PeerDescriptor remote = make_desc("prefill-0");
  remote.compat_hash ^= 1;
  Status st = check_compatible(local, remote);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("compat_hash"), std::string::npos) << st.message();
}

TEST(PeerDescriptor, EmptyModelIsNotChecked) {
  PeerDescriptor local = make_desc("decode-0");
  local.model.clear();
  local.compat_hash = local.compute_compat_hash();
  EXPECT_TRUE(check_compatible(local, make_desc("prefill-0")).is_ok());
}

// Peers at different tensor-parallel layouts exchange the same wire layout:
// compatible; the layout travels in the descriptor, and a refusal names both.
TEST(PeerDescriptor, TensorParallelLayoutTravelsAndMayDiffer) {
  PeerDescriptor remote = make_desc("prefill-0");
  remote.tp = KvTpLayout{4, 1, 2};  // 2 KV heads over 4 ranks: each on two
  auto back = PeerDescriptor::from_json(remote.to_json());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->tp, remote.tp);
  const PeerDescriptor local = make_desc("decode-0");  // TP=1
  EXPECT_EQ(local.tp, (KvTpLayout{1, 2, 1}));
  EXPECT_TRUE(check_compatible(local, *back).is_ok());

  back->head_dim = 16;
  back->compat_hash = back->compute_compat_hash();
  Status st = check_compatible(local, *back);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("head_dim differs (local 8, remote 16)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("local layout: model tiny-llama, F16"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("2 KV heads x 8, block 4, TP=1"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("remote layout: model tiny-llama"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("2 KV heads x 16, block 4, TP=4 (1 KV head per rank, each on 2 ranks)"),
            std::string::npos)
      << st.message();
}

TEST(PeerDescriptor, InconsistentTensorParallelLayoutRefused) {
  Json j = make_desc("p").to_json();
  EXPECT_EQ(j["tp"]["size"], 1);
  j["tp"] = Json{{"size", 2}, {"kv_heads_per_rank", 2}, {"kv_head_replicas", 1}};  // 4 heads, not 2
  auto back = PeerDescriptor::from_json(j);
  ASSERT_FALSE(back.is_ok());
  EXPECT_NE(back.status().message().find("cannot hold 2 KV heads"), std::string::npos) << back.status().message();
  j.erase("tp");  // a peer from before tensor parallelism: TP=1
  back = PeerDescriptor::from_json(j);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->tp, (KvTpLayout{1, 2, 1}));
}

// A peer's block count and size are input: the region they name must lie
// within what this side can read (cuda_ipc: the allocation its handle opened).
TEST(PeerDescriptor, RegionWithinWhatCanBeServed) {
  PeerDescriptor d = make_desc("peer");
  d.num_blocks = 8;
  d.block_bytes = 1024;
  EXPECT_TRUE(check_peer_region_within(d, 0, 8 * 1024, "cuda_ipc").is_ok());
  EXPECT_TRUE(check_peer_region_within(d, 4096, 4096 + 8 * 1024, "cuda_ipc").is_ok());

  const Status past_end = check_peer_region_within(d, 4096, 8 * 1024, "cuda_ipc");
  EXPECT_EQ(past_end.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(past_end.message().find("cuda_ipc: peer 'peer' names 8 blocks of 1024 bytes at offset 4096 of 8192"),
            std::string::npos)
      << past_end.message();
  EXPECT_FALSE(check_peer_region_within(d, 8 * 1024 + 1, 8 * 1024, "cuda_ipc").is_ok());  // offset past the end
  EXPECT_FALSE(check_peer_region_within(d, UINT64_MAX, 8 * 1024, "cuda_ipc").is_ok());

  d.num_blocks = 9;  // one block more than there is
  EXPECT_FALSE(check_peer_region_within(d, 0, 8 * 1024, "local transport").is_ok());
  d.num_blocks = -1;
  EXPECT_FALSE(check_peer_region_within(d, 0, UINT64_MAX, "shm transport").is_ok());
  d.num_blocks = INT64_MAX;  // the product overflows 64 bits
  d.block_bytes = 1u << 20;
  EXPECT_FALSE(check_peer_region_within(d, 0, UINT64_MAX, "shm transport").is_ok());
  d.num_blocks = 0;
  EXPECT_TRUE(check_peer_region_within(d, 0, 0, "shm transport").is_ok());
}

TEST(KvRegion, ValidateNamesProblem) {
  KvRegionDesc r = testing::small_shape(4);
  EXPECT_EQ(r.validate().code(), StatusCode::kInvalidArgument);  // null base
  std::vector<uint8_t> mem(r.total_bytes());
  r.base = mem.data();
  EXPECT_TRUE(r.validate().is_ok());
  r.layout.head_dim = 0;
  EXPECT_NE(r.validate().message().find("head_dim=0"), std::string::npos);
  EXPECT_FALSE(parse_dtype("int4").is_ok());
}

}  // namespace
}  // namespace baton

// PD with --kv-cache-dtype fp8 (issue 18): a prefill and a decode both
// caching e4m3 return exactly the tokens an fp8 agg instance returns, over
// shm and tcp (the blocks move as they are: one flipped byte would change a
// K or V value the decode attends to); the KV metrics count fp8's bytes (a
// quarter of the CPU's F32 blocks); and a prefill and decode of different KV
// dtypes are refused, naming both.
#include <gtest/gtest.h>

#include "backend/model_kv_layout.h"
#include "model/checkpoint.h"
#include "pd_cluster.h"

namespace baton::pd_test {
namespace {

constexpr int kMaxTokens = 6;
constexpr int kBlockSize = 16;

Tweak kv_dtype(const std::string& dtype) {
  return [dtype](InstanceOptions& o) { o.engine.kv_cache_dtype = dtype; };
}

size_t block_bytes(const std::string& model, DType dtype) {
  auto ckpt = Checkpoint::open(model);
  EXPECT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  if (!ckpt.is_ok()) return 0;
  KvLayout l = model_kv_layout((*ckpt)->config(), dtype);
  l.block_size = kBlockSize;
  return l.block_bytes();
}

class PdKvFp8Test : public ::testing::TestWithParam<std::string> {};

TEST_P(PdKvFp8Test, Fp8PrefillAndDecodeMatchFp8Agg) {
  const std::string model = fixture_model("qwen3-tiny");
  auto agg = start_instance(model, "agg", "shm", kv_dtype("fp8"));
  auto prefill = start_instance(model, "prefill", GetParam(), kv_dtype("fp8"));
  auto decode = start_instance(model, "decode", GetParam(), kv_dtype("fp8"));
  ASSERT_TRUE(agg && prefill && decode);
  auto proxy = start_router(*prefill, *decode);
  ASSERT_TRUE(proxy);
  for (int n : {17, 49}) {  // 1 and 3 full blocks pulled
    const std::vector<int> prompt = prompt_of(n, 60 + n);
    Completion want = post_completion(agg->url(), completion_body(prompt, kMaxTokens, false));
    ASSERT_EQ(want.http_status, 200) << want.raw;
    Completion got = post_completion(proxy->url(), completion_body(prompt, kMaxTokens, false));
    ASSERT_EQ(got.http_status, 200) << got.raw;
    EXPECT_EQ(got.tokens, want.tokens) << GetParam() << " prompt " << n;
  }
  const double blocks = counter(*decode, "baton:kv_blocks_received_total");
  EXPECT_EQ(blocks, 1 + 3);
  const size_t fp8_bytes = block_bytes(model, DType::kF8E4M3);
  EXPECT_EQ(fp8_bytes * 4, block_bytes(model, DType::kF32));
  EXPECT_EQ(counter(*decode, "baton:kv_bytes_received_total"), blocks * static_cast<double>(fp8_bytes));
  EXPECT_EQ(counter(*decode, "baton:kv_transfers_failed_total"), 0);
  EXPECT_TRUE(wait_until([&] { return counter(*prefill, "baton:kv_leases") == 0; }, 5.0));
  EXPECT_TRUE(pool_fully_free(*prefill));
  EXPECT_TRUE(pool_fully_free(*decode));
}

INSTANTIATE_TEST_SUITE_P(Transports, PdKvFp8Test, ::testing::Values("shm", "tcp"),
                         [](const auto& info) { return info.param; });

// A prefill at fp8 and a decode at auto (the CPU's F32): the pull is
// refused, the error naming the KV cache dtype of both sides.
TEST(PdKvFp8Refusal, MixedKvDtypesNameBoth) {
  const std::string model = fixture_model("qwen3-tiny");
  auto prefill = start_instance(model, "prefill", "tcp", kv_dtype("fp8"));
  auto decode = start_instance(model, "decode", "tcp", kv_dtype("auto"));
  ASSERT_TRUE(prefill && decode);
  const std::vector<int> prompt = prompt_of(20, 3);
  Json params = prefill_direct(*prefill, prompt);
  Completion got = decode_direct(*decode, prompt, params);
  EXPECT_NE(got.http_status, 200) << got.raw;
  EXPECT_NE(got.error.find("KV cache dtype (--kv-cache-dtype) differs (local F32, remote F8_E4M3)"), std::string::npos)
      << got.raw;
  EXPECT_EQ(counter(*decode, "baton:kv_transfers_failed_total"), 1);
  EXPECT_TRUE(pool_fully_free(*decode));
}

}  // namespace
}  // namespace baton::pd_test

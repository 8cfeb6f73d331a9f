// The KV port as a trust boundary, on in-process instances: a decode refuses
// client-written kv_transfer_params (400, still serving), PD works with a KV
// secret on both sides, and a prefill whose decode never comes frees its
// lease as soon as the router gives up, not at lease expiry; with the
// whole-prompt handoff and with streamed KV (params sent mid-prompt).
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>

#include "pd_cluster.h"

namespace baton::pd_test {
namespace {

const std::string kModel = "qwen3-tiny";

std::string secret_file(const std::string& name, const std::string& value) {
  const std::string path = ::testing::TempDir() + "/pd_trust_" + std::to_string(getpid()) + "_" + name;
  std::ofstream(path) << value << "\n";
  ::chmod(path.c_str(), 0600);
  return path;
}

// Whole-prompt handoff (false) or streamed KV (true).
class PdTrustModeTest : public ::testing::TestWithParam<bool> {
 protected:
  bool streamed() const { return GetParam(); }
  // What the prefill grants; a streamed answer stays open in `held`.
  Json grant(const Instance& prefill, const std::vector<int>& prompt) {
    if (!streamed()) return prefill_direct(prefill, prompt);
    held_.push_back(prefill_streamed(prefill, prompt));
    return held_.back()->params;
  }
  std::vector<std::unique_ptr<StreamedPrefill>> held_;
};

TEST_P(PdTrustModeTest, SignedParamsWorkAndAlteredOnesAreRefused) {
  const std::string model = fixture_model(kModel);
  const std::string key = secret_file("kv.secret", "pd-trust-test-secret-0123456789");
  const std::string other = secret_file("other.secret", "a-different-secret-9876543210");
  auto with_secret = [](const std::string& file) { return [file](InstanceOptions& o) { o.pd.kv_secret_file = file; }; };
  auto agg = start_instance(model, "agg");
  auto prefill = start_instance(model, "prefill", "tcp", with_secret(key));
  auto decode = start_instance(model, "decode", "tcp", with_secret(key));
  auto wrong_secret = start_instance(model, "decode", "tcp", with_secret(other));
  auto no_secret = start_instance(model, "decode", "tcp");
  ASSERT_TRUE(agg && prefill && decode && wrong_secret && no_secret);
  const std::vector<int> prompt = prompt_of(40, 3);
  Completion want = post_completion(agg->url(), [&] {
    Json b = completion_body(prompt, 4, false);
    return b;
  }());
  ASSERT_EQ(want.http_status, 200) << want.raw;

  // Client-written params (another host, another request's blocks): 400.
  const Json params = grant(*prefill, prompt);
  ASSERT_TRUE(params.contains("signature")) << params.dump();
  for (const auto& [field, value] :
       std::vector<std::pair<const char*, Json>>{{"remote_host", "203.0.113.9"},
                                                 {"remote_block_ids", Json({0, 1, 2, 3, 4, 5, 6, 7, 8, 9})},
                                                 {"stream_kv", !streamed()}}) {
    Json forged = params;
    forged[field] = value;
    Completion c = decode_direct(*decode, prompt, forged, false, 4);
    EXPECT_EQ(c.http_status, 400) << field << ": " << c.raw;
    EXPECT_NE(c.error.find("signature"), std::string::npos) << c.error;
  }
  // Another secret: the signature does not verify there either.
  Completion c = decode_direct(*wrong_secret, prompt, params, false, 4);
  EXPECT_EQ(c.http_status, 400) << c.raw;
  // No secret at the decode: the params name loopback, so it connects, and the
  // prefill's agent refuses it for want of the secret.
  Completion open = decode_direct(*no_secret, prompt, params, false, 4);
  EXPECT_NE(open.http_status, 200) << open.raw;
  // The real decode: the same tokens as agg, every instance still serving.
  const Json fresh = grant(*prefill, prompt);
  Completion ok = decode_direct(*decode, prompt, fresh, false, 4);
  EXPECT_EQ(ok.http_status, 200) << ok.raw;
  EXPECT_EQ(ok.tokens, want.tokens);
  for (const Instance* inst : {agg.get(), prefill.get(), decode.get(), wrong_secret.get(), no_secret.get()}) {
    EXPECT_TRUE(serving(*inst)) << inst->url();
  }
  EXPECT_TRUE(wait_until([&] { return counter(*prefill, "baton:kv_leases") <= 1; }, 5.0));
}

// Probe: client-written kv_transfer_params made a decode connect anywhere.
TEST(PdTrustTest, ClientWrittenParamsWithoutASecretAreRefused) {
  const std::string model = fixture_model(kModel);
  auto started = start_instance(model, "decode", "tcp");
  ASSERT_TRUE(started);
  Instance& decode = *started;
  const std::vector<int> prompt = prompt_of(20, 1);
  Json forged = {{"do_remote_prefill", true},
                 {"remote_engine_id", "x"},
                 {"remote_request_id", "victim"},
                 {"remote_block_ids", Json({0, 1, 2, 3, 4})},
                 {"remote_host", "198.51.100.4"},
                 {"remote_port", 6379},
                 {"remote_num_tokens", 20},
                 {"remote_block_size", 16},
                 {"lease_expires_ms", 99999999999999},
                 {"lease_ms", 30000},
                 {"lease_token", "guess"}};
  Completion c = decode_direct(decode, prompt, forged, false, 4);
  EXPECT_EQ(c.http_status, 400) << c.raw;
  EXPECT_NE(c.error.find("198.51.100.4"), std::string::npos) << c.error;
  forged["remote_port"] = Json::array();
  c = decode_direct(decode, prompt, forged, false, 4);
  EXPECT_EQ(c.http_status, 400) << c.raw;
  EXPECT_NE(c.error.find("remote_port"), std::string::npos) << c.error;
  EXPECT_EQ(post_completion(decode.url(), completion_body(prompt, 2, false)).http_status, 200);
}

// A prefill whose decode never comes frees its blocks when the router gives
// up (here: no healthy decode instance), long before the 60 s lease.
TEST_P(PdTrustModeTest, RouterReleasesTheLeaseWhenItGivesUp) {
  const std::string model = fixture_model(kModel);
  auto started = start_instance(model, "prefill", "tcp", [](InstanceOptions& o) { o.pd.kv_lease_ms = 60000; });
  ASSERT_TRUE(started);
  Instance& prefill = *started;
  // The router's first health round (done when it starts) finds the decode down.
  RouterOptions ro = router_options(prefill.url(), "http://127.0.0.1:1");
  ro.stream_kv = streamed();
  auto proxy = start_router(ro);
  ASSERT_TRUE(proxy);
  Completion c = post_completion(proxy->url(), completion_body(prompt_of(40, 2), 4, false));
  EXPECT_EQ(c.http_status, 503) << c.raw;
  EXPECT_TRUE(wait_until([&] { return counter(prefill, "baton:kv_leases") == 0; }, 5.0));
  EXPECT_TRUE(pool_fully_free(prefill));
  // The release endpoint itself: a second release of the same params is 404,
  // forged ones 400.
  const Json params = prefill_direct(prefill, prompt_of(40, 4));
  EXPECT_EQ(counter(prefill, "baton:kv_leases"), 1);
  Json forged = params;
  forged["lease_token"] = std::string(32, '0');
  auto r = http::fetch(prefill.url() + "/v1/kv/release", "POST", Json{{"kv_transfer_params", forged}}.dump(), 10.0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 400) << r->body;
  r = http::fetch(prefill.url() + "/v1/kv/release", "POST", Json{{"kv_transfer_params", params}}.dump(), 10.0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(counter(prefill, "baton:kv_leases"), 0);
  r = http::fetch(prefill.url() + "/v1/kv/release", "POST", Json{{"kv_transfer_params", params}}.dump(), 10.0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 404) << r->body;
}

INSTANTIATE_TEST_SUITE_P(WholeAndStreamed, PdTrustModeTest, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "streamed" : "whole"); });

}  // namespace
}  // namespace baton::pd_test

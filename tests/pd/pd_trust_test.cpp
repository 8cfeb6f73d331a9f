// The KV port as a trust boundary on real processes: a decode refuses
// client-written kv_transfer_params (400, still serving), PD works with a KV
// secret on both sides, and a prefill whose decode never comes frees its
// lease as soon as the router gives up, not at lease expiry.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>

#include "pd_cluster.h"

namespace baton::pd_test {
namespace {

const std::string kModel = "qwen3-tiny";

std::vector<std::unique_ptr<Proc>> start(const std::vector<std::vector<std::string>>& args) {
  std::string error;
  auto procs = spawn_all(args, &error);
  EXPECT_EQ(procs.size(), args.size()) << error;
  return procs;
}

Json prefill_direct(const Proc& prefill, const std::vector<int>& prompt) {
  Json body = completion_body(prompt, 1, false);
  body["kv_transfer_params"] = {{"do_remote_decode", true}};
  Completion c = post_completion(prefill.url(), body);
  EXPECT_EQ(c.http_status, 200) << c.raw;
  return c.kv_transfer_params;
}

Completion decode_direct(const Proc& decode, const std::vector<int>& prompt, const Json& params) {
  Json body = completion_body(prompt, 4, false);
  body["kv_transfer_params"] = params;
  return post_completion(decode.url(), body);
}

std::string secret_file(const std::string& name, const std::string& value) {
  const std::string path = tmp_dir() + "/" + name;
  std::ofstream(path) << value << "\n";
  ::chmod(path.c_str(), 0600);
  return path;
}

double counter(const Proc& p, const std::string& name) { return metric(p.url(), name).value_or(-1); }

TEST(PdTrustTest, SignedParamsWorkAndAlteredOnesAreRefused) {
  const std::string model = fixture_model(kModel);
  const std::string key = secret_file("kv.secret", "pd-trust-test-secret-0123456789");
  const std::string other = secret_file("other.secret", "a-different-secret-9876543210");
  auto p = start({serve_args(model, "agg"),
                  serve_args(model, "prefill", {"--kv-transport", "tcp", "--kv-secret-file", key}),
                  serve_args(model, "decode", {"--kv-transport", "tcp", "--kv-secret-file", key}),
                  serve_args(model, "decode", {"--kv-transport", "tcp", "--kv-secret-file", other}),
                  serve_args(model, "decode", {"--kv-transport", "tcp"})});
  ASSERT_EQ(p.size(), 5u);
  Proc &agg = *p[0], &prefill = *p[1], &decode = *p[2], &wrong_secret = *p[3], &no_secret = *p[4];
  const std::vector<int> prompt = prompt_of(40, 3);
  Completion want = post_completion(agg.url(), [&] {
    Json b = completion_body(prompt, 4, false);
    return b;
  }());
  ASSERT_EQ(want.http_status, 200) << want.raw;

  // Client-written params (another host, another request's blocks): 400.
  const Json params = prefill_direct(prefill, prompt);
  ASSERT_TRUE(params.contains("signature")) << params.dump();
  for (const auto& [field, value] : std::vector<std::pair<const char*, Json>>{
           {"remote_host", "203.0.113.9"}, {"remote_block_ids", Json({0, 1, 2, 3, 4, 5, 6, 7, 8, 9})}}) {
    Json forged = params;
    forged[field] = value;
    Completion c = decode_direct(decode, prompt, forged);
    EXPECT_EQ(c.http_status, 400) << field << ": " << c.raw;
    EXPECT_NE(c.error.find("signature"), std::string::npos) << c.error;
  }
  // Another secret: the signature does not verify there either.
  Completion c = decode_direct(wrong_secret, prompt, params);
  EXPECT_EQ(c.http_status, 400) << c.raw;
  // No secret at the decode: the params name loopback, so it connects, and the
  // prefill's agent refuses it for want of the secret.
  Completion open = decode_direct(no_secret, prompt, params);
  EXPECT_NE(open.http_status, 200) << open.raw;
  // The real decode: the same tokens as agg, every process alive.
  const Json fresh = prefill_direct(prefill, prompt);
  Completion ok = decode_direct(decode, prompt, fresh);
  EXPECT_EQ(ok.http_status, 200) << ok.raw;
  EXPECT_EQ(ok.tokens, want.tokens);
  for (auto& proc : p) EXPECT_TRUE(proc->running());
  EXPECT_TRUE(wait_until([&] { return counter(prefill, "baton:kv_leases") <= 1; }, 5.0));
}

// Probe: client-written kv_transfer_params made a decode connect anywhere.
TEST(PdTrustTest, ClientWrittenParamsWithoutASecretAreRefused) {
  const std::string model = fixture_model(kModel);
  auto p = start({serve_args(model, "decode", {"--kv-transport", "tcp"})});
  ASSERT_EQ(p.size(), 1u);
  Proc& decode = *p[0];
  const std::vector<int> prompt = prompt_of(20, 1);
  Json forged = {{"do_remote_prefill", true}, {"remote_engine_id", "x"},       {"remote_request_id", "victim"},
                 {"remote_block_ids", Json({0, 1, 2, 3, 4})},                 {"remote_host", "198.51.100.4"},
                 {"remote_port", 6379},       {"remote_num_tokens", 20},      {"remote_block_size", 16},
                 {"lease_expires_ms", 99999999999999}, {"lease_ms", 30000},   {"lease_token", "guess"}};
  Completion c = decode_direct(decode, prompt, forged);
  EXPECT_EQ(c.http_status, 400) << c.raw;
  EXPECT_NE(c.error.find("198.51.100.4"), std::string::npos) << c.error;
  forged["remote_port"] = Json::array();
  c = decode_direct(decode, prompt, forged);
  EXPECT_EQ(c.http_status, 400) << c.raw;
  EXPECT_NE(c.error.find("remote_port"), std::string::npos) << c.error;
  EXPECT_EQ(post_completion(decode.url(), completion_body(prompt, 2, false)).http_status, 200);
}

// A prefill whose decode never comes frees its blocks when the router gives
// up (here: no healthy decode instance), long before the 60 s lease.
TEST(PdTrustTest, RouterReleasesTheLeaseWhenItGivesUp) {
  const std::string model = fixture_model(kModel);
  auto p = start({serve_args(model, "prefill", {"--kv-transport", "tcp", "--kv-lease-ms", "60000"})});
  ASSERT_EQ(p.size(), 1u);
  Proc& prefill = *p[0];
  auto proxy = start({{"proxy", "--port", "0", "--mode", "pd", "--prefill", prefill.url(), "--decode",
                       "http://127.0.0.1:1", "--health-interval-s", "0.2"}});
  ASSERT_EQ(proxy.size(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  Completion c = post_completion(proxy[0]->url(), completion_body(prompt_of(40, 2), 4, false));
  EXPECT_EQ(c.http_status, 503) << c.raw;
  EXPECT_TRUE(wait_until([&] { return counter(prefill, "baton:kv_leases") == 0; }, 5.0))
      << prefill.log();
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

}  // namespace
}  // namespace baton::pd_test

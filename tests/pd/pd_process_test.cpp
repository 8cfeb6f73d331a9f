// The PD faults that need a peer to be a real process: a prefill killed
// (kill -9) between its answer and the pull, a decode killed or stopped
// (SIGSTOP) mid-stream, and a decode that gets SIGTERM while registered in
// etcd. The peer under attack is `baton serve` (support/test_process.h);
// everything else runs in-process (pd_cluster.h). Each ends with a clear
// error or a correct answer and nothing left pinned, with the whole-prompt
// handoff and with streamed KV (the pull running while the prefill computes).
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "common/clock.h"
#include "discovery/etcd_client.h"
#include "discovery/registration.h"
#include "pd_cluster.h"
#include "support/test_process.h"

namespace baton::pd_test {
namespace {

using baton::testing::TestProcess;

const std::string kModel = "qwen3-tiny";

// `baton serve` with the options serve_options gives an in-process instance.
std::unique_ptr<TestProcess> serve_process(const std::string& role, std::vector<std::string> extra,
                                           int num_kv_blocks = 64) {
  std::vector<std::string> args = {
      "serve", "--model",         fixture_model(kModel),         "--served-model-name", "m", "--port",
      "0",     "--num-kv-blocks", std::to_string(num_kv_blocks), "--num-threads",       "1", "--role",
      role};
  args.insert(args.end(), extra.begin(), extra.end());
  std::string error;
  auto p = TestProcess::start_server(args, &error);
  EXPECT_TRUE(p) << error;
  return p;
}

// Whole-prompt handoff (false) or streamed KV (true).
class PdProcessModeTest : public ::testing::TestWithParam<bool> {
 protected:
  bool streamed() const { return GetParam(); }
  RouterOptions router_for(const Instance& prefill, const TestProcess& decode) const {
    RouterOptions ro = router_options(prefill.url(), decode.url());
    ro.stream_kv = streamed();
    return ro;
  }
};

TEST_P(PdProcessModeTest, PrefillKilledAfterAnsweringOrMidStreamBeforeThePull) {
  const std::string model = fixture_model(kModel);
  auto agg = start_instance(model, "agg");
  auto prefill = serve_process("prefill", {"--kv-transport", "tcp", "--max-num-batched-tokens", "16"});
  auto dec_fail = start_instance(model, "decode", "tcp");
  auto dec_recompute = start_instance(model, "decode", "tcp",
                                      [](InstanceOptions& o) { o.pd.kv_load_failure_policy = "recompute"; });
  ASSERT_TRUE(agg && prefill && dec_fail && dec_recompute);
  const std::vector<int> prompt = prompt_of(40, 11);
  // Streamed: the params come while the prompt computes, its answer stays open.
  std::unique_ptr<StreamedPrefill> sa = streamed() ? prefill_streamed(*prefill, prompt) : nullptr;
  std::unique_ptr<StreamedPrefill> sb = streamed() ? prefill_streamed(*prefill, prompt) : nullptr;
  Json a = sa ? sa->params : prefill_direct(*prefill, prompt);
  Json b = sb ? sb->params : prefill_direct(*prefill, prompt);
  ASSERT_FALSE(a.is_null());
  prefill->kill_now();

  Stopwatch sw;
  Completion failed = decode_direct(*dec_fail, prompt, a);
  EXPECT_EQ(failed.http_status, 500) << failed.raw;
  EXPECT_NE(failed.error.find("KV transfer failed"), std::string::npos) << failed.error;
  Completion recomputed = decode_direct(*dec_recompute, prompt, b);
  EXPECT_EQ(recomputed.http_status, 200) << recomputed.raw;
  Completion want = post_completion(agg->url(), completion_body(prompt, 5, false));
  EXPECT_EQ(recomputed.tokens, want.tokens);
  EXPECT_LT(sw.elapsed_s(), 10.0);
  EXPECT_EQ(counter(*dec_fail, "baton:kv_transfers_failed_total"), 1);
  EXPECT_TRUE(pool_fully_free(*dec_fail));
  EXPECT_TRUE(pool_fully_free(*dec_recompute));
}

TEST_P(PdProcessModeTest, DecodeKilledMidStream) {
  auto prefill = start_instance(fixture_model(kModel), "prefill", "shm", {}, 512);
  auto decode = serve_process("decode", {"--kv-transport", "shm"}, 512);
  ASSERT_TRUE(prefill && decode);
  auto proxy = start_router(router_for(*prefill, *decode));
  ASSERT_TRUE(proxy);

  Completion result;
  std::thread client(
      [&] { result = post_completion(proxy->url(), completion_body(prompt_of(30, 5), 4000, true), 30.0); });
  const bool streaming = wait_until([&] { return counter(*decode, "baton:num_requests_running") >= 1; }, 20.0);
  decode->kill_now();
  Stopwatch sw;
  client.join();
  EXPECT_TRUE(streaming);
  EXPECT_LT(sw.elapsed_s(), 15.0) << "client: " << result.error << "\ndecode log:\n" << decode->log();
  // The stream ends without a full answer, and says why.
  EXPECT_NE(result.finish_reason, "length") << result.raw.substr(0, 500);
  EXPECT_FALSE(result.error.empty()) << result.raw.substr(result.raw.size() > 500 ? result.raw.size() - 500 : 0);
  // The pull had finished and said done: the prefill side holds nothing.
  EXPECT_TRUE(wait_until([&] { return counter(*prefill, "baton:kv_leases") == 0; }, 5.0));
  EXPECT_TRUE(pool_fully_free(*prefill));
}

// A streamed completion through `url`, with `stop` called once the client
// has its first tokens (a 503 while a health check is late on a loaded
// machine is retried, after `before_retry`, until the stream is under way);
// then how long the stream took to end after `stop`. Stopped before its
// first byte, the router's first-byte timeout (20 s) would apply instead of
// its idle timeout.
struct StreamedCompletion {
  bool got_tokens = false;
  double waited_after_stop_s = 0;
  std::string raw;
};

StreamedCompletion stream_until_stopped(const std::string& url, const Json& body, const std::function<void()>& stop,
                                        const std::function<void()>& before_retry) {
  StreamedCompletion out;
  auto parsed = http::parse_url(url);
  if (!parsed.is_ok()) return out;
  for (int attempt = 0; attempt < 20 && !out.got_tokens; ++attempt) {
    boost::asio::io_context io;
    auto client = http::HttpClient::create(io.get_executor(), *parsed);
    if (!client.is_ok()) return out;
    std::mutex mu;
    std::condition_variable cv;
    bool got_tokens = false, done = false;
    int status = 0;
    std::string raw;
    (*client)->stream(http::Request{.target = "/v1/completions", .body = body.dump(), .timeout_s = 60.0},
                      {.on_headers = [&](int s, const std::vector<http::Header>&) { status = s; },
                       .on_data =
                           [&](std::string_view bytes) {
                             std::lock_guard<std::mutex> lock(mu);
                             raw.append(bytes);
                             if (status == 200 && raw.find("\"text\"") != std::string::npos) got_tokens = true;
                             cv.notify_all();
                           },
                       .on_done =
                           [&](const Status&) {
                             std::lock_guard<std::mutex> lock(mu);
                             done = true;
                             cv.notify_all();
                           }});
    std::thread runner([&] { io.run(); });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return got_tokens || done; });
    if (got_tokens) {
      out.got_tokens = true;
      lock.unlock();
      stop();
      Stopwatch sw;
      lock.lock();
      cv.wait(lock, [&] { return done; });
      out.waited_after_stop_s = sw.elapsed_s();
    }
    out.raw = raw;
    lock.unlock();
    runner.join();
    if (!out.got_tokens) before_retry();
  }
  return out;
}

// A decode stopped mid-stream: the client's stream ends with an error in
// seconds (the router's idle timeout), not at the request timeout.
TEST_P(PdProcessModeTest, DecodeStoppedMidStream) {
  auto prefill = start_instance(fixture_model(kModel), "prefill", "shm", {}, 512);
  auto decode = serve_process("decode", {"--kv-transport", "shm"}, 512);
  ASSERT_TRUE(prefill && decode);
  RouterOptions ro = router_for(*prefill, *decode);
  ro.idle_timeout_s = 2.0;
  auto proxy = start_router(ro);
  ASSERT_TRUE(proxy);
  const StreamedCompletion streamed = stream_until_stopped(
      proxy->url(), completion_body(prompt_of(30, 5), 4000, true), [&] { decode->signal(SIGSTOP); },
      [&] { wait_until([&] { return serving(*proxy); }, 1.0, 50); });
  decode->signal(SIGCONT);
  EXPECT_TRUE(streamed.got_tokens) << streamed.raw.substr(0, 300);
  EXPECT_LT(streamed.waited_after_stop_s, 10.0) << streamed.raw.substr(0, 300);
  EXPECT_NE(streamed.raw.find("stopped answering"), std::string::npos) << streamed.raw.substr(0, 600);
  // Resumed, the decode finds its client gone and aborts the request.
  EXPECT_TRUE(wait_until([&] { return metric(decode->url(), "baton:num_requests_running").value_or(-1) == 0; }, 10.0));
  EXPECT_TRUE(pool_fully_free(*decode));
  EXPECT_TRUE(decode->running()) << decode->log();
  EXPECT_EQ(post_completion(proxy->url(), completion_body(prompt_of(12), 3, true)).http_status, 200);
}

INSTANTIATE_TEST_SUITE_P(WholeAndStreamed, PdProcessModeTest, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "streamed" : "whole"); });

int num_registered(const std::string& endpoint, const std::string& role) {
  auto etcd = discovery::EtcdClient::connect(endpoint);
  if (!etcd.is_ok()) return -1;
  auto kvs = etcd->get_prefix(std::string(discovery::kInstancePrefix) + role + "/");
  return kvs.is_ok() ? static_cast<int>(kvs->size()) : -1;
}

// `baton serve --discovery`: a decode that gets SIGTERM leaves the registry
// first and keeps serving a moment, so that no request fails while it goes.
TEST(PdProcessTest, DecodeLeavingGracefullyFailsNoRequest) {
  baton::testing::EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << "etcd did not start (is etcd-server installed?)";
  auto registered = [&](InstanceOptions& o) { o.pd.discovery = etcd.endpoint(); };
  auto prefill = start_instance(fixture_model(kModel), "prefill", "shm", registered);
  auto staying = start_instance(fixture_model(kModel), "decode", "shm", registered);
  auto leaving = serve_process("decode", {"--kv-transport", "shm", "--discovery", etcd.endpoint()});
  ASSERT_TRUE(prefill && staying && leaving);
  EXPECT_EQ(num_registered(etcd.endpoint(), "prefill"), 1);
  EXPECT_EQ(num_registered(etcd.endpoint(), "decode"), 2);
  RouterOptions ro;
  ro.port = 0;
  ro.mode = "pd";
  ro.discovery = etcd.endpoint();
  ro.health_interval_s = 0.2;
  auto proxy = start_router(ro);
  ASSERT_TRUE(proxy);
  const std::string url = proxy->url();
  const Json body = completion_body(prompt_of(20, 4), 4, false);
  ASSERT_TRUE(wait_until([&] { return post_completion(url, body).http_status == 200; }, 10.0));

  std::atomic<bool> stop{false};
  std::atomic<int> num_ok{0};
  std::vector<std::string> failures;
  std::thread client([&] {
    while (!stop) {
      Completion c = post_completion(url, body);
      if (c.http_status == 200 && c.tokens.size() == 4) {
        ++num_ok;
      } else {
        failures.push_back(std::to_string(c.http_status) + " " + c.raw + c.error);
      }
    }
  });
  EXPECT_TRUE(wait_until([&] { return num_ok.load() >= 3; }, 10.0));
  leaving->signal(SIGTERM);
  // It leaves the registry at once, and still runs for its grace period.
  EXPECT_TRUE(wait_until([&] { return num_registered(etcd.endpoint(), "decode") == 1; }, 0.8));
  EXPECT_TRUE(leaving->running());
  // Requests go on while it serves its grace period and drains, and after.
  const int ok_before_exit = num_ok.load();
  EXPECT_EQ(leaving->wait_exit(10.0), 0) << leaving->log();
  EXPECT_TRUE(wait_until([&] { return num_ok.load() >= ok_before_exit + 3; }, 10.0));
  stop = true;
  client.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();
  EXPECT_TRUE(pool_fully_free(*prefill));
  EXPECT_TRUE(pool_fully_free(*staying));
}

}  // namespace
}  // namespace baton::pd_test

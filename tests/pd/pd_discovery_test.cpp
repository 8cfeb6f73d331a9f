// `baton serve --discovery`: instances register in etcd under their role,
// a `baton proxy --discovery` routes PD requests over them, and a decode
// instance that gets SIGTERM leaves the registry first and keeps serving a
// moment, so that no request fails while it goes.
#include <gtest/gtest.h>

#include <atomic>

#include "discovery/etcd_client.h"
#include "discovery/registration.h"
#include "discovery/etcd_fixture.h"
#include "pd_cluster.h"

namespace baton::pd_test {
namespace {

int num_registered(const std::string& endpoint, const std::string& role) {
  auto etcd = discovery::EtcdClient::connect(endpoint);
  if (!etcd.is_ok()) return -1;
  auto kvs = etcd->get_prefix(std::string(discovery::kInstancePrefix) + role + "/");
  return kvs.is_ok() ? static_cast<int>(kvs->size()) : -1;
}

TEST(PdDiscoveryTest, DecodeLeavingGracefullyFailsNoRequest) {
  baton::testing::EtcdProcess etcd;
  if (!etcd.ready()) GTEST_SKIP() << "etcd did not start (is etcd-server installed?)";
  const std::string model = fixture_model("qwen3-tiny");
  const std::vector<std::string> disc = {"--kv-transport", "shm", "--discovery", etcd.endpoint()};
  std::string error;
  auto p = spawn_all({serve_args(model, "prefill", disc), serve_args(model, "decode", disc),
                      serve_args(model, "decode", disc)},
                     &error);
  ASSERT_EQ(p.size(), 3u) << error;
  EXPECT_EQ(num_registered(etcd.endpoint(), "prefill"), 1);
  EXPECT_EQ(num_registered(etcd.endpoint(), "decode"), 2);
  auto proxy = spawn_all({{"proxy", "--port", "0", "--mode", "pd", "--discovery", etcd.endpoint(),
                           "--health-interval-s", "0.2"}},
                         &error);
  ASSERT_EQ(proxy.size(), 1u) << error;
  const std::string url = proxy[0]->url();
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
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  p[1]->signal(SIGTERM);
  // It leaves the registry at once, and still runs for its grace period.
  EXPECT_TRUE(wait_until([&] { return num_registered(etcd.endpoint(), "decode") == 1; }, 0.8));
  EXPECT_TRUE(p[1]->running());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stop = true;
  client.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();
  EXPECT_GT(num_ok.load(), 5);
  EXPECT_EQ(p[1]->terminate(10.0), 0) << p[1]->log();
  for (auto& proc : p) EXPECT_TRUE(!proc->running() || pool_fully_free(*proc));
}

}  // namespace
}  // namespace baton::pd_test

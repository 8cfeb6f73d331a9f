#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "discovery/etcd_client.h"
#include "discovery/registry_watcher.h"
#include "support/registry_recorder.h"
#include "support/test_process.h"
#include "support/wait.h"

namespace baton::discovery {
namespace {

TEST(Base64Test, RoundTrips) {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", "/baton/instances/prefill/x",
                                                       std::string("\x00\xff\x10", 3)}) {
    EXPECT_EQ(base64_decode(base64_encode(s)).value(), s);
  }
  EXPECT_EQ(base64_encode("/baton/a"), "L2JhdG9uL2E=");
  EXPECT_FALSE(base64_decode("a*b").is_ok());
  EXPECT_EQ(prefix_range_end("/baton/"), "/baton0");
}

using Recorder = ::baton::testing::RegistryRecorder;

TEST(DiscoveryTest, InstancesJoinAndLeaveGracefully) {
  testing::EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << "etcd did not start (is etcd-server installed?)";
  auto before = Registration::start(etcd.endpoint(), {"http://127.0.0.1:8101", "prefill", "m"});
  ASSERT_TRUE(before.is_ok()) << before.status().to_string();
  Recorder rec;
  RegistryWatcher watcher(etcd.endpoint(), rec.callbacks());
  ASSERT_TRUE(watcher.start().is_ok());
  EXPECT_TRUE(rec.wait_for("+prefill http://127.0.0.1:8101"));  // present before the watch
  auto later = Registration::start(etcd.endpoint(), {"http://127.0.0.1:8102", "decode", "m"});
  ASSERT_TRUE(later.is_ok());
  EXPECT_TRUE(rec.wait_for("+decode http://127.0.0.1:8102"));
  (*later)->deregister();
  EXPECT_TRUE(rec.wait_for("-decode http://127.0.0.1:8102", 2.0));  // at once, not after the TTL
  watcher.stop();
}

TEST(DiscoveryTest, AnInstanceThatDiesLeavesWhenItsLeaseLapses) {
  testing::EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready());
  Recorder rec;
  RegistryWatcher watcher(etcd.endpoint(), rec.callbacks());
  ASSERT_TRUE(watcher.start().is_ok());
  // A registration nobody keeps alive: what a killed process leaves behind.
  auto client = EtcdClient::connect(etcd.endpoint()).value();
  int64_t lease = client.grant_lease(2).value();
  InstanceRecord r{"http://127.0.0.1:8103", "agg", "m"};
  ASSERT_TRUE(client.put(instance_key(r.role, r.url), r.to_json().dump(), lease).is_ok());
  EXPECT_TRUE(rec.wait_for("+agg http://127.0.0.1:8103"));
  EXPECT_TRUE(rec.wait_for("-agg http://127.0.0.1:8103", 10.0));
  EXPECT_FALSE(client.keep_alive(lease).is_ok());
  watcher.stop();
}

TEST(DiscoveryTest, UnreachableEtcdIsAClearError) {
  auto reg = Registration::start("etcd://127.0.0.1:1", {"http://x:1", "agg", "m"});
  ASSERT_FALSE(reg.is_ok());
  EXPECT_NE(reg.status().message().find("127.0.0.1:1"), std::string::npos) << reg.status().message();
  EXPECT_FALSE(EtcdClient::connect("etcd://").is_ok());
}

}  // namespace
}  // namespace baton::discovery

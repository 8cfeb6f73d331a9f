// Roles that follow the load with discovery: an instance registered in etcd
// re-registers under its new role right after a switch flips it (it leaves
// under the old one), so a router that watches the registry follows; on
// shutdown it leaves under the role it has then.
#include <gtest/gtest.h>

#include "pd/pd_cluster.h"
#include "support/registry_recorder.h"
#include "support/test_process.h"

namespace baton::pd_test {
namespace {

TEST(RoleSwitchDiscoveryTest, ASwitchedInstanceReRegistersUnderItsNewRole) {
  baton::testing::EtcdProcess etcd;
  ASSERT_TRUE(etcd.ready()) << "etcd did not start (is etcd-server installed?)";
  auto x = start_instance(fixture_model("llama3-tiny"), "prefill", "shm", [&](InstanceOptions& o) {
    o.pd.role_switching = true;
    o.pd.discovery = etcd.endpoint();
  });
  ASSERT_TRUE(x);
  baton::testing::RegistryRecorder events;
  discovery::RegistryWatcher watcher(etcd.endpoint(), events.callbacks());
  ASSERT_TRUE(watcher.start().is_ok());
  ASSERT_TRUE(events.wait_for("+prefill " + x->url()));
  auto r = http::fetch(x->url() + "/v1/admin/role", "POST", R"({"role": "decode"})", 10.0);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->status, 202) << r->body;
  EXPECT_TRUE(events.wait_for("-prefill " + x->url()));
  EXPECT_TRUE(events.wait_for("+decode " + x->url()));
  EXPECT_EQ(x->role(), PdRole::kDecode);
  x->stop();
  EXPECT_TRUE(events.wait_for("-decode " + x->url()));
  watcher.stop();
}

}  // namespace
}  // namespace baton::pd_test

// --kv-require: a prefill or decode instance whose KV path is not of the
// required class refuses to start, naming what it found.
#include <gtest/gtest.h>

#include <cstdlib>

#include "instance/kv_connector_setup.h"
#include "kv_transfer/ucx_inventory.h"

namespace baton::instance {
namespace {

bool host_has_rdma() {
  auto resources = list_ucx_resources();
  if (!resources.is_ok()) return false;
  for (const auto& r : *resources) {
    if (r.kv_class == "rdma") return true;
  }
  return false;
}

TEST(KvRequire, RdmaOverUcxOnAHostWithoutRdmaRefusesToStart) {
  if (host_has_rdma()) GTEST_SKIP() << "this host has RDMA";
  if (std::getenv("UCX_TLS") != nullptr) GTEST_SKIP() << "UCX_TLS is set";
  PdOptions pd;
  pd.role = "prefill";
  pd.kv_transport = "ucx";
  pd.kv_require = "rdma";
  auto o = kv_connector_options(PdRole::kPrefill, pd, "127.0.0.1");
  ASSERT_FALSE(o.is_ok());
  EXPECT_EQ(o.status().code(), StatusCode::kFailedPrecondition);
  const std::string& m = o.status().message();
  EXPECT_NE(m.find("--kv-require rdma: UCX on this host has no rdma transport"), std::string::npos) << m;
  EXPECT_NE(m.find("it found: "), std::string::npos) << m;
  EXPECT_NE(m.find("tcp/"), std::string::npos) << m;  // what it found is named
  EXPECT_EQ(std::getenv("UCX_TLS"), nullptr);         // nothing confined on a refusal
}

TEST(KvRequire, TcpTransportIsNotRdmaAndTcpIsTcp) {
  PdOptions pd;
  pd.role = "decode";
  pd.kv_transport = "tcp";
  pd.kv_require = "rdma";
  auto refused = kv_connector_options(PdRole::kDecode, pd, "127.0.0.1");
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  pd.kv_require = "tcp";
  EXPECT_TRUE(kv_connector_options(PdRole::kDecode, pd, "127.0.0.1").is_ok());
}

}  // namespace
}  // namespace baton::instance

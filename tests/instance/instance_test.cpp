// The instance layer on its own: one options struct gives a running
// instance (or router) in this process, its ports observable; bad options
// are clear errors, and stop() leaves nothing listening.
#include <gtest/gtest.h>

#include "backend/tensor_parallel_backend.h"
#include "http/http_client.h"
#include "instance/instance.h"
#include "instance/router_instance.h"
#include "support/wait.h"

namespace baton::instance {
namespace {

std::string fixture_model(const std::string& name) { return std::string(BATON_TEST_DATA) + "/fixtures/models/" + name; }

InstanceOptions options_for(const std::string& role, const std::string& transport = "local") {
  InstanceOptions o;
  o.engine.model = fixture_model("qwen3-tiny");
  o.engine.num_threads = 1;
  o.engine.engine.num_kv_blocks = 32;
  o.server.served_model_name = "m";
  o.server.port = 0;
  o.pd.role = role;
  o.pd.kv_transport = transport;
  return o;
}

bool answers_health(const std::string& url) {
  auto r = http::fetch(url + "/health", "GET", {}, 5.0);
  return r.is_ok() && r->status == 200;
}

TEST(InstanceTest, EachRoleStartsOnAFreePortWithItsKvPort) {
  for (const std::string role : {"agg", "prefill", "decode"}) {
    auto started = Instance::start(options_for(role));
    ASSERT_TRUE(started.is_ok()) << role << ": " << started.status().to_string();
    Instance& inst = **started;
    EXPECT_GT(inst.port(), 0) << role;
    EXPECT_EQ(inst.url(), "http://127.0.0.1:" + std::to_string(inst.port()));
    EXPECT_TRUE(answers_health(inst.url())) << role;
    EXPECT_EQ(inst.served_model_name(), "m");
    EXPECT_EQ(inst.connector() != nullptr, role != "agg") << role;
    if (role == "agg") EXPECT_EQ(inst.role(), PdRole::kAgg);
    const std::string url = inst.url();
    inst.stop();
    inst.stop();  // idempotent
    EXPECT_FALSE(answers_health(url)) << role << " still answers after stop()";
  }
}

TEST(InstanceTest, APrefillOverTcpReportsItsKvAgentPort) {
  auto prefill = Instance::start(options_for("prefill", "tcp"));
  ASSERT_TRUE(prefill.is_ok()) << prefill.status().to_string();
  EXPECT_GT((*prefill)->kv_port(), 0);
  auto decode = Instance::start(options_for("decode", "tcp"));
  ASSERT_TRUE(decode.is_ok()) << decode.status().to_string();
  EXPECT_EQ((*decode)->kv_port(), 0);  // only a prefill runs an agent
}

// A tensor parallel instance whose rank group breaks: within a watchdog
// period the instance reports it, /health answers 503 naming it (a router's
// health check takes the instance out), and requests are refused.
TEST(InstanceTest, ABrokenRankGroupStopsTheInstanceAndFailsItsHealthCheck) {
  InstanceOptions o = options_for("agg");
  o.engine.tensor_parallel_size = 2;
  auto started = Instance::start(o);
  ASSERT_TRUE(started.is_ok()) << started.status().to_string();
  Instance& inst = **started;
  const std::string body = R"({"model": "m", "prompt": [1, 2, 3], "max_tokens": 4})";
  auto ok = http::fetch(inst.url() + "/v1/completions", "POST", body, 30.0);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_TRUE(inst.fatal_error().is_ok());
  auto* group = dynamic_cast<TensorParallelBackend*>(&inst.engine().backend());
  ASSERT_NE(group, nullptr);
  group->abort(internal_error("rank 1 lost its device"));
  EXPECT_TRUE(::baton::testing::wait_until([&] { return !inst.fatal_error().is_ok(); }, 5.0, 20));
  EXPECT_NE(inst.fatal_error().message().find("rank 1 lost its device"), std::string::npos);
  auto health = http::fetch(inst.url() + "/health", "GET", {}, 5.0);
  ASSERT_TRUE(health.is_ok()) << health.status().to_string();
  EXPECT_EQ(health->status, 503);
  EXPECT_NE(health->body.find("rank 1 lost its device"), std::string::npos) << health->body;
  auto refused = http::fetch(inst.url() + "/v1/completions", "POST", body, 30.0);
  ASSERT_TRUE(refused.is_ok()) << refused.status().to_string();
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_NE(refused->body.find("the engine has stopped"), std::string::npos) << refused->body;
  inst.stop();  // and nothing hangs
}

TEST(InstanceTest, BadOptionsAreClearErrors) {
  InstanceOptions o = options_for("sideways");
  auto bad_role = Instance::start(o);
  ASSERT_FALSE(bad_role.is_ok());
  EXPECT_NE(bad_role.status().message().find("sideways"), std::string::npos) << bad_role.status().to_string();

  o = options_for("prefill", "tcp");
  o.pd.kv_host = "203.0.113.7";  // not loopback, and no secret
  auto open_kv = Instance::start(o);
  ASSERT_FALSE(open_kv.is_ok());
  EXPECT_NE(open_kv.status().message().find("203.0.113.7"), std::string::npos);

  o = options_for("agg");
  o.engine.model = "/nonexistent/model";
  EXPECT_FALSE(Instance::start(o).is_ok());

  // A port already taken: the server does not start, and says so.
  auto first = Instance::start(options_for("agg"));
  ASSERT_TRUE(first.is_ok());
  o = options_for("agg");
  o.server.port = (*first)->port();
  auto second = Instance::start(o);
  EXPECT_FALSE(second.is_ok());
}

// An aggregated instance runs at --tensor-parallel-size 2, and so do PD
// roles (the KV handoff between layouts: tests/pd/pd_tp_layout_test.cpp).
TEST(InstanceTest, TensorParallelAggAndPdRolesStart) {
  InstanceOptions o = options_for("agg");
  o.engine.tensor_parallel_size = 2;
  auto agg = Instance::start(o);
  ASSERT_TRUE(agg.is_ok()) << agg.status().to_string();
  EXPECT_TRUE(answers_health((*agg)->url()));
  for (const std::string role : {"prefill", "decode"}) {
    o = options_for(role);
    o.engine.tensor_parallel_size = 2;
    auto started = Instance::start(o);
    ASSERT_TRUE(started.is_ok()) << role << ": " << started.status().to_string();
    EXPECT_TRUE(answers_health((*started)->url())) << role;
  }
}

TEST(RouterInstanceTest, RoutesOverInProcessInstancesAndChecksItsOptions) {
  auto prefill = Instance::start(options_for("prefill"));
  auto decode = Instance::start(options_for("decode"));
  ASSERT_TRUE(prefill.is_ok() && decode.is_ok());
  RouterOptions ro;
  ro.port = 0;
  ro.prefill = (*prefill)->url() + "/";  // a trailing slash is dropped
  ro.decode = (*decode)->url();
  auto router = RouterInstance::start(ro);
  ASSERT_TRUE(router.is_ok()) << router.status().to_string();
  EXPECT_GT((*router)->port(), 0);
  Json body = {{"model", "m"}, {"prompt", {5, 6, 7, 8}}, {"max_tokens", 3}, {"temperature", 0}, {"ignore_eos", true}};
  auto r = http::fetch((*router)->url() + "/v1/completions", "POST", body.dump(), 30.0);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200) << r->body;
  const std::string url = (*router)->url();
  (*router)->stop();
  EXPECT_FALSE(answers_health(url));

  RouterOptions no_decode;
  no_decode.prefill = "http://127.0.0.1:1";
  EXPECT_NE(RouterInstance::check(no_decode).message().find("--decode"), std::string::npos);
  RouterOptions agg;
  agg.mode = "agg";
  EXPECT_NE(RouterInstance::check(agg).message().find("--replica"), std::string::npos);
  RouterOptions policy = ro;
  policy.policy = "nope";
  EXPECT_FALSE(RouterInstance::start(policy).is_ok());
}

}  // namespace
}  // namespace baton::instance

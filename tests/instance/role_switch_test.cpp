// Roles that follow the load, in-process (instance/role_switcher.h,
// router/role_control_loop.h): instances started with role switching flip
// between prefill and decode through the router's switch procedure while
// clients keep sending requests, and every request is answered once, with
// the tokens an agg instance gives; a drain that cannot finish (a lease
// nobody reads) is reported as failed and the role stays; the admin
// endpoint refuses bad input naming the problem.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "pd/pd_cluster.h"
#include "router/role_control_loop.h"

namespace baton::pd_test {
namespace {

constexpr int kMaxTokens = 5;

const Tweak kSwitching = [](InstanceOptions& o) { o.pd.role_switching = true; };

http::Response admin(const Instance& inst, const std::string& method, const std::string& body = {},
                     const std::string& api_key = {}) {
  auto url = http::parse_url(inst.url() + "/v1/admin/role");
  EXPECT_TRUE(url.is_ok());
  http::Request req;
  req.method = method;
  req.body = body;
  req.timeout_s = 10;
  if (!api_key.empty()) req.headers.push_back({"Authorization", "Bearer " + api_key});
  auto r = http::fetch(*url, std::move(req));
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : http::Response{};
}

Json admin_status(const Instance& inst) { return Json::parse(admin(inst, "GET").body, nullptr, false); }

// The sum of a counter's series whose line holds `label` (e.g. result="done").
double sum_series(const std::string& base_url, const std::string& name, const std::string& label) {
  auto r = http::fetch(base_url + "/metrics", "GET", {}, 10.0);
  if (!r.is_ok()) return -1;
  std::istringstream lines(r->body);
  std::string line;
  double sum = 0;
  while (std::getline(lines, line)) {
    if (line.rfind(name + "{", 0) == 0 && line.find(label) != std::string::npos) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

TEST(RoleSwitchTest, RolesFlipUnderLoadAndEveryRequestIsAnsweredOnceAsAgg) {
  const std::string model = fixture_model("llama3-tiny");
  auto agg = start_instance(model, "agg");
  auto a = start_instance(model, "prefill", "shm", kSwitching);
  auto b = start_instance(model, "decode", "shm", kSwitching);
  auto c = start_instance(model, "decode", "shm", kSwitching);
  ASSERT_TRUE(agg && a && b && c);
  RouterOptions ro = router_options(a->url(), b->url() + "," + c->url());
  auto proxy = start_router(ro);
  ASSERT_TRUE(proxy);

  constexpr int kClients = 3, kPerClient = 8;
  std::vector<std::vector<int>> prompts;
  std::vector<std::vector<std::string>> want;
  for (int i = 0; i < kClients * kPerClient; ++i) {
    prompts.push_back(prompt_of(5 + (i * 11) % 40, 50 + i * 13));
    Completion w = post_completion(agg->url(), completion_body(prompts.back(), kMaxTokens, false));
    ASSERT_EQ(w.http_status, 200) << w.raw;
    want.push_back(w.tokens);
  }
  std::vector<Completion> got(prompts.size());
  std::atomic<int> num_done{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      for (int k = 0; k < kPerClient; ++k) {
        const size_t i = static_cast<size_t>(t * kPerClient + k);
        got[i] = post_completion(proxy->url(), completion_body(prompts[i], kMaxTokens, i % 2 == 1));
        num_done.fetch_add(1);
      }
    });
  }
  // The router's switch procedure, driven by hand: c decode -> prefill once
  // some requests are through, then a prefill -> decode (c is a prefill
  // by then, so a is not the last one).
  router::KvIndex index;
  router::RoleControlOptions opts;
  opts.drain_timeout_s = 30;
  router::RoleControlLoop loop(proxy->pool(), index, proxy->service().metrics(), opts);
  EXPECT_TRUE(wait_until([&] { return num_done.load() >= 4; }, 60.0));
  router::RoleMove to_prefill{c->url(), router::PoolRole::kDecode, router::PoolRole::kPrefill, "test", "by hand"};
  EXPECT_EQ(loop.carry_out(to_prefill), "done");
  EXPECT_EQ(c->role(), PdRole::kPrefill);
  EXPECT_TRUE(wait_until([&] { return num_done.load() >= 12; }, 60.0));
  router::RoleMove to_decode{a->url(), router::PoolRole::kPrefill, router::PoolRole::kDecode, "test", "by hand"};
  EXPECT_EQ(loop.carry_out(to_decode), "done");
  EXPECT_EQ(a->role(), PdRole::kDecode);
  for (auto& t : clients) t.join();

  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(got[i].http_status, 200) << i << ": " << got[i].raw;
    EXPECT_EQ(got[i].error, "") << i;
    EXPECT_EQ(got[i].tokens, want[i]) << "request " << i;
  }
  // Once each: every request's prefill lease was read and ended by its
  // decode's "done" exactly once, across whichever instances held it.
  const std::string done = "baton:kv_leases_done_total";
  EXPECT_TRUE(wait_until(
      [&] { return counter(*a, done) + std::max(0.0, counter(*c, done)) == static_cast<double>(prompts.size()); }, 5.0))
      << counter(*a, done) << " + " << counter(*c, done);
  EXPECT_EQ(std::max(0.0, counter(*a, "baton:kv_lease_expirations_total")), 0);
  EXPECT_EQ(sum_series(proxy->url(), "baton:router_role_switches_total", "result=\"done\""), 2);
  // The pool follows: a serves decode, c prefill; after the load, requests
  // go through them and still match agg.
  EXPECT_TRUE(proxy->pool().find(c->url(), router::PoolRole::kPrefill));
  EXPECT_TRUE(proxy->pool().find(a->url(), router::PoolRole::kDecode));
  EXPECT_FALSE(proxy->pool().find(a->url(), router::PoolRole::kPrefill));
  Completion after = post_completion(proxy->url(), completion_body(prompts[0], kMaxTokens, false));
  EXPECT_EQ(after.tokens, want[0]) << after.raw;
  for (Instance* inst : {a.get(), b.get(), c.get()}) EXPECT_TRUE(pool_fully_free(*inst)) << inst->url();
  EXPECT_EQ(admin_status(*a)["num_switches"], 1);
  EXPECT_EQ(admin(*a, "GET").status, 200);
}

TEST(RoleSwitchTest, ADrainThatCannotFinishIsReportedAndTheRoleStays) {
  const std::string model = fixture_model("llama3-tiny");
  auto p = start_instance(model, "prefill", "shm", [](InstanceOptions& o) {
    o.pd.role_switching = true;
    o.pd.kv_lease_ms = 60000;  // nobody reads it: it outlives the drain
  });
  ASSERT_TRUE(p);
  Json lease = prefill_direct(*p, prompt_of(20));
  ASSERT_TRUE(lease.is_object());
  http::Response started = admin(*p, "POST", R"({"role": "decode", "drain_timeout_s": 1.0})");
  ASSERT_EQ(started.status, 202) << started.body;
  // While it drains: prefill requests are refused naming the switch, and a
  // second switch is refused as a conflict.
  Json body = completion_body(prompt_of(9), 1, false);
  body["kv_transfer_params"] = {{"do_remote_decode", true}};
  Completion refused = post_completion(p->url(), body);
  EXPECT_EQ(refused.http_status, 503) << refused.raw;
  EXPECT_NE(refused.error.find("switching its role from prefill to decode"), std::string::npos) << refused.raw;
  http::Response again = admin(*p, "POST", R"({"role": "agg"})");
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_NE(again.body.find("in flight"), std::string::npos) << again.body;
  // Plain requests go on meanwhile.
  EXPECT_EQ(post_completion(p->url(), completion_body(prompt_of(7), 2, false)).http_status, 200);

  ASSERT_TRUE(wait_until([&] { return admin_status(*p)["switch"].value("state", "") == "failed"; }, 10.0));
  Json st = admin_status(*p);
  EXPECT_EQ(st["role"], "prefill");
  EXPECT_EQ(st["num_failed_switches"], 1);
  EXPECT_EQ(sum_series(p->url(), "baton:role_switches_total", "result=\"failed\""), 1);
  EXPECT_NE(st["switch"].value("error", "").find("1 KV leases held"), std::string::npos) << st.dump();
  EXPECT_EQ(p->role(), PdRole::kPrefill);
  // The old role serves again; once its leases are released the switch goes through.
  Json second = prefill_direct(*p, prompt_of(9));
  ASSERT_TRUE(second.is_object());
  for (const Json& params : {lease, second}) {
    auto r = http::fetch(p->url() + "/v1/kv/release", "POST", Json{{"kv_transfer_params", params}}.dump(), 10.0);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status, 200) << r->body;
  }
  started = admin(*p, "POST", R"({"role": "agg", "drain_timeout_s": 5.0})");
  ASSERT_EQ(started.status, 202) << started.body;
  ASSERT_TRUE(wait_until([&] { return admin_status(*p)["switch"].value("state", "") != "draining"; }, 10.0));
  EXPECT_EQ(admin_status(*p)["switch"]["state"], "done") << admin_status(*p).dump();
  EXPECT_EQ(p->role(), PdRole::kAgg);
  EXPECT_EQ(sum_series(p->url(), "baton:role_switches_total", "result=\"done\""), 1);
  EXPECT_EQ(p->kv_port(), 0);
  EXPECT_TRUE(pool_fully_free(*p));
}

// An operator's switch (through the admin endpoint, not the router's
// controller): until the router's health checks see the new role, it still
// sends prefills to the draining instance, which refuses them naming its
// role; the router retries them on another prefill, and no client sees it.
TEST(RoleSwitchTest, APrefillRefusedByADrainingInstanceIsRetriedElsewhere) {
  const std::string model = fixture_model("llama3-tiny");
  auto agg = start_instance(model, "agg");
  auto a = start_instance(model, "prefill", "shm", kSwitching);
  auto b = start_instance(model, "prefill");
  auto d = start_instance(model, "decode");
  ASSERT_TRUE(agg && a && b && d);
  auto proxy = start_router(router_options(a->url() + "," + b->url(), d->url()));
  ASSERT_TRUE(proxy);
  Json lease = prefill_direct(*a, prompt_of(20));  // unread: a's drain waits for it
  ASSERT_EQ(admin(*a, "POST", R"({"role": "decode", "drain_timeout_s": 30})").status, 202);
  for (int i = 0; i < 6; ++i) {
    const std::vector<int> prompt = prompt_of(8 + i, 200 + i);
    Completion want = post_completion(agg->url(), completion_body(prompt, kMaxTokens, false));
    Completion got = post_completion(proxy->url(), completion_body(prompt, kMaxTokens, false));
    EXPECT_EQ(got.http_status, 200) << got.raw;
    EXPECT_EQ(got.tokens, want.tokens) << i;
  }
  EXPECT_GE(sum_series(proxy->url(), "baton:router_retries_total", "prefill"), 1);
  EXPECT_EQ(admin_status(*a)["switch"]["state"], "draining");
  auto r = http::fetch(a->url() + "/v1/kv/release", "POST", Json{{"kv_transfer_params", lease}}.dump(), 10.0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(wait_until([&] { return a->role() == PdRole::kDecode; }, 10.0));
}

TEST(RoleSwitchTest, SwitchesBackAndForthAndServesEachRole) {
  const std::string model = fixture_model("llama3-tiny");
  auto x = start_instance(model, "agg", "shm", kSwitching);
  auto d = start_instance(model, "decode");
  ASSERT_TRUE(x && d);
  Completion plain = post_completion(x->url(), completion_body(prompt_of(12), kMaxTokens, false));
  ASSERT_EQ(plain.http_status, 200) << plain.raw;
  for (const char* role : {"prefill", "decode", "prefill"}) {
    http::Response r = admin(*x, "POST", Json{{"role", role}}.dump());
    ASSERT_EQ(r.status, 202) << r.body;
    ASSERT_TRUE(wait_until([&] { return admin_status(*x)["switch"].value("state", "") == "done"; }, 10.0)) << role;
    EXPECT_EQ(admin_status(*x)["role"], role);
    auto h = http::fetch(x->url() + "/health", "GET", {}, 10.0);
    ASSERT_TRUE(h.is_ok());
    EXPECT_EQ(h->header("X-Baton-Role"), role);
  }
  // As a prefill, its lease is pulled by a fixed decode instance, and the
  // tokens are agg's.
  const std::vector<int> prompt = prompt_of(12);
  Json params = prefill_direct(*x, prompt);
  Completion pd = decode_direct(*d, prompt, params, false, kMaxTokens);
  EXPECT_EQ(pd.http_status, 200) << pd.raw;
  EXPECT_EQ(pd.tokens, plain.tokens);
  EXPECT_GT(x->kv_port(), 0);
  EXPECT_TRUE(pool_fully_free(*x));
}

TEST(RoleSwitchTest, BadAdminInputIsRefusedNamingTheProblem) {
  const std::string model = fixture_model("llama3-tiny");
  auto x = start_instance(model, "decode", "shm", [](InstanceOptions& o) {
    o.pd.role_switching = true;
    o.server.api_key = "k";
  });
  auto fixed = start_instance(model, "agg");
  ASSERT_TRUE(x && fixed);
  struct Case {
    const char* body;
    int status;
    const char* needle;
  } cases[] = {
      {"{not json", 400, "JSON body"},
      {"[1]", 400, "must be a JSON object"},
      {"{}", 400, "'role' is required"},
      {R"({"role": 3})", 400, "'role' is required"},
      {R"({"role": "pilot"})", 400, "'role' must be agg, prefill or decode, got 'pilot'"},
      {R"({"role": "prefill", "drain_timeout_s": -1})", 400, "'drain_timeout_s' must be"},
      {R"({"role": "prefill", "drain_timeout_s": "soon"})", 400, "'drain_timeout_s' must be"},
      {R"({"role": "prefill", "speed": 1})", 400, "unknown field 'speed'"},
      {R"({"role": "decode"})", 400, "already decode"},
  };
  for (const Case& c : cases) {
    http::Response r = admin(*x, "POST", c.body, "k");
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    EXPECT_NE(r.body.find(c.needle), std::string::npos) << c.body << " -> " << r.body;
  }
  EXPECT_EQ(admin(*x, "POST", R"({"role": "prefill"})").status, 401);  // no API key
  EXPECT_EQ(admin(*x, "GET", {}, "wrong").status, 401);
  EXPECT_EQ(admin(*x, "DELETE", {}, "k").status, 405);
  EXPECT_EQ(admin(*x, "GET", {}, "k").status, 200);
  EXPECT_EQ(x->role(), PdRole::kDecode);
  // A request of a role it does not have is refused, naming the roles.
  Json body = completion_body(prompt_of(9), 1, false);
  body["kv_transfer_params"] = {{"do_remote_decode", true}};
  http::Request req;
  req.method = "POST";
  req.body = body.dump();
  req.headers.push_back({"Authorization", "Bearer k"});
  auto r = http::fetch(*http::parse_url(x->url() + "/v1/completions"), req);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("role is decode"), std::string::npos) << r->body;
  // An instance without role switching has no such endpoint.
  EXPECT_EQ(admin(*fixed, "GET").status, 404);
}

TEST(RoleSwitchTest, AnInstanceThatRefusesTheSwitchRejoinsUnderItsOldRole) {
  const std::string model = fixture_model("llama3-tiny");
  auto p = start_instance(model, "prefill");  // no --role-switching: no admin endpoint
  auto d1 = start_instance(model, "decode");
  auto d2 = start_instance(model, "decode");
  ASSERT_TRUE(p && d1 && d2);
  auto proxy = start_router(router_options(p->url(), d1->url() + "," + d2->url()));
  ASSERT_TRUE(proxy);
  router::KvIndex index;
  router::RoleControlLoop loop(proxy->pool(), index, proxy->service().metrics(), router::RoleControlOptions{});
  router::RoleMove move{d2->url(), router::PoolRole::kDecode, router::PoolRole::kPrefill, "prefill_queue", "test"};
  EXPECT_EQ(loop.carry_out(move), "refused");
  EXPECT_TRUE(proxy->pool().find(d2->url(), router::PoolRole::kDecode));
  EXPECT_FALSE(proxy->pool().find(d2->url(), router::PoolRole::kPrefill));
  EXPECT_EQ(sum_series(proxy->url(), "baton:router_role_switches_total", "result=\"refused\""), 1);
  Completion c = post_completion(proxy->url(), completion_body(prompt_of(10), 3, false));
  EXPECT_EQ(c.http_status, 200) << c.raw;
}

}  // namespace
}  // namespace baton::pd_test

// The role control loop against scripted instances: each streams a KV
// snapshot carrying its load and answers the admin endpoint. With the
// prefill's queue held over the decodes' by more than the margin, the loop
// moves the least loaded decode to prefill (once: the cooldown holds the
// next), through POST /v1/admin/role with the instances' API key (sent on
// the event streams too), re-adds it to the pool under its new role and
// counts the switch; an instance whose drain fails rejoins under its old role.
#include "router/role_control_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <sstream>

#include "http/http_server.h"
#include "router/health_checker.h"
#include "router/kv_event_subscriber.h"
#include "router/upstream_clients.h"
#include "support/wait.h"

namespace baton::router {
namespace {

using baton::testing::wait_until;

// An instance reduced to what role control reads and calls.
class ScriptedInstance {
 public:
  // garbled_polls: that many reads of a switch's progress are answered with
  // fields of other types ("state": 7) before the real answer.
  ScriptedInstance(std::string role, int num_waiting, int num_running, bool drain_fails = false, int garbled_polls = 0)
      : role_(std::move(role)), drain_fails_(drain_fails), garbled_polls_(garbled_polls) {
    load_.num_waiting = num_waiting;
    load_.num_running = num_running;
    HttpServerOptions opts;
    opts.port = 0;
    opts.num_io_threads = 1;
    server_ = std::make_unique<HttpServer>(
        opts, [this](HttpRequest req, std::shared_ptr<HttpExchange> ex) { handle(std::move(req), std::move(ex)); });
    EXPECT_TRUE(server_->start().is_ok());
  }
  ~ScriptedInstance() { server_->stop(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::string role() {
    std::lock_guard<std::mutex> lock(mu_);
    return role_;
  }
  std::vector<std::string> switch_bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return switch_bodies_;
  }
  int garbled_polls_left() {
    std::lock_guard<std::mutex> lock(mu_);
    return garbled_polls_;
  }

 private:
  void handle(HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    std::lock_guard<std::mutex> lock(mu_);
    if (req.path == "/health") {
      HttpResponse r;
      r.headers.emplace_back("X-Baton-Role", role_);
      return ex->reply(std::move(r));
    }
    if (req.path == "/v1/kv/events") {
      if (req.header("authorization") != "Bearer secret") return ex->reply(HttpResponse{401});
      ex->start_events();
      ex->send_event(Json{{"type", "snapshot"},
                          {"epoch", 1},
                          {"seq", 0},
                          {"block_size", 16},
                          {"hashes", Json::array()},
                          {"load", load_.to_json()}}
                         .dump());
      return;  // stays open
    }
    if (req.path != "/v1/admin/role") return ex->reply(HttpResponse{404});
    if (req.header("authorization") != "Bearer secret") return ex->reply(HttpResponse{401});
    HttpResponse r;
    if (req.method == "POST") {
      switch_bodies_.push_back(req.body);
      Json body = Json::parse(req.body);
      from_ = role_;
      state_ = drain_fails_ ? "failed" : "done";
      if (!drain_fails_) role_ = body.value("role", "");
      r.status = 202;
    }
    Json status = {{"role", role_}};
    if (!state_.empty()) status["switch"] = {{"from", from_}, {"state", state_}, {"error", "the drain timed out"}};
    if (!state_.empty() && req.method == "GET" && garbled_polls_ > 0) {
      --garbled_polls_;
      status["switch"] = {{"from", 1}, {"state", 7}, {"error", Json::array({1})}};
    }
    r.body = status.dump();
    ex->reply(std::move(r));
  }

  std::mutex mu_;
  std::string role_, from_, state_;
  const bool drain_fails_;
  int garbled_polls_;
  KvLoad load_;
  std::vector<std::string> switch_bodies_;
  std::unique_ptr<HttpServer> server_;
};

RoleControlOptions quick() {
  RoleControlOptions o;
  o.margin = 2;
  o.hold_s = 0.2;
  o.interval_s = 0.02;
  o.cooldown_s = 600;  // one switch per test
  o.drain_timeout_s = 5;
  return o;
}

double switches(MetricsRegistry& m, const std::string& result) {
  const std::string text = m.render();
  double sum = 0;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("baton:router_role_switches_total{", 0) == 0 &&
        line.find("result=\"" + result + "\"") != line.npos) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

struct Router {
  InstancePool pool;
  KvIndex index;
  UpstreamClients clients{1};
  MetricsRegistry metrics;
  std::unique_ptr<KvEventSubscriber> events;
  std::unique_ptr<RoleControlLoop> loop;
  void start() {
    events = std::make_unique<KvEventSubscriber>(pool, clients, index, 0.05, "secret");
    events->start();
    loop = std::make_unique<RoleControlLoop>(pool, index, metrics, quick(), "secret");
    loop->start();
  }
  ~Router() {
    if (loop) loop->stop();
    if (events) events->stop();
    clients.stop();
  }
};

TEST(RoleControlLoopTest, APrefillQueueOverTheMarginMovesTheLeastLoadedDecode) {
  ScriptedInstance p("prefill", 9, 4), d1("decode", 0, 6), d2("decode", 0, 1);
  Router r;
  r.pool.add(p.url(), PoolRole::kPrefill);
  r.pool.add(d1.url(), PoolRole::kDecode);
  r.pool.add(d2.url(), PoolRole::kDecode);
  r.start();
  ASSERT_TRUE(wait_until([&] { return switches(r.metrics, "done") == 1; }, 10.0));
  EXPECT_EQ(d2.role(), "prefill");
  EXPECT_EQ(d1.role(), "decode");
  ASSERT_EQ(d2.switch_bodies().size(), 1u);
  Json body = Json::parse(d2.switch_bodies()[0]);
  EXPECT_EQ(body["role"], "prefill");
  EXPECT_EQ(body["drain_timeout_s"], 5.0);
  EXPECT_TRUE(r.pool.find(d2.url(), PoolRole::kPrefill));
  EXPECT_FALSE(r.pool.find(d2.url(), PoolRole::kDecode));
  // The cooldown holds: no second move, though the queue is still over.
  r.loop->stop();
  EXPECT_EQ(switches(r.metrics, "done"), 1);
  EXPECT_TRUE(d1.switch_bodies().empty());
  EXPECT_TRUE(p.switch_bodies().empty());
}

// Two prefills and a busy decode: role control moves a prefill whose drain
// fails; it stays in its old role. garbled_polls: that many of its progress
// answers have fields of other types first.
void expect_a_failed_drain_keeps_the_role(int garbled_polls) {
  ScriptedInstance p("prefill", 0, 1), p2("prefill", 0, 0, /*drain_fails=*/true, garbled_polls), d("decode", 12, 3);
  Router r;
  r.pool.add(p.url(), PoolRole::kPrefill);
  r.pool.add(p2.url(), PoolRole::kPrefill);
  r.pool.add(d.url(), PoolRole::kDecode);
  r.start();
  ASSERT_TRUE(wait_until([&] { return switches(r.metrics, "failed") == 1; }, 10.0));
  EXPECT_EQ(p2.garbled_polls_left(), 0);
  EXPECT_EQ(p2.role(), "prefill");
  EXPECT_TRUE(r.pool.find(p2.url(), PoolRole::kPrefill));
  EXPECT_FALSE(r.pool.find(p2.url(), PoolRole::kDecode));
  EXPECT_EQ(switches(r.metrics, "done"), 0);
}

TEST(RoleControlLoopTest, AFailedDrainLeavesTheInstanceInItsOldRole) { expect_a_failed_drain_keeps_the_role(0); }

// An instance whose progress answers have fields of other types: role
// control looks again (those answers threw out of its thread before) and
// takes the verdict once one reads right.
TEST(RoleControlLoopTest, AGarbledProgressAnswerIsLookedAtAgain) { expect_a_failed_drain_keeps_the_role(3); }

// Outside role control (an operator's POST /v1/admin/role): the health
// checks read the role the instance reports and move it in the pool.
TEST(RoleControlLoopTest, HealthChecksMoveAnInstanceThatReportsAnotherRole) {
  ScriptedInstance x("decode", 0, 0);
  InstancePool pool;
  pool.add(x.url(), PoolRole::kPrefill);
  HealthChecker health(pool, 60.0);
  health.check_all();
  EXPECT_FALSE(pool.find(x.url(), PoolRole::kPrefill));
  EXPECT_TRUE(pool.find(x.url(), PoolRole::kDecode));
  health.check_all();  // nothing more to move
  EXPECT_EQ(pool.all().size(), 1u);
}

}  // namespace
}  // namespace baton::router

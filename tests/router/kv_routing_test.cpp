// KV-aware routing and conditional disaggregation over real in-process
// instances (DESIGN.md "KV-aware routing"): the router subscribes to every
// instance's /v1/kv/events, routes a prompt to the instance holding its
// longest cached prefix, heals from an instance restart, and in PD mode
// prefills short prompts on the decode instance.
#include <gtest/gtest.h>

#include "pd/pd_cluster.h"

namespace baton::pd_test {
namespace {

const std::string kModel = "qwen3-tiny";

// The value of the series of `name` whose labels contain every one of
// `labels` (e.g. instance="http://..."); 0 when absent.
double metric_with(const std::string& base_url, const std::string& name, const std::vector<std::string>& labels) {
  auto r = http::fetch(base_url + "/metrics", "GET", {}, 10.0);
  if (!r.is_ok() || r->status != 200) return -1;
  std::istringstream lines(r->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    bool all = true;
    for (const auto& l : labels) all = all && line.find(l) != std::string::npos;
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return 0;
}

std::string label(const char* key, const std::string& value) { return std::string(key) + "=\"" + value + "\""; }

std::vector<int> prompt_of(int n, int start) {
  std::vector<int> p;
  for (int i = 0; i < n; ++i) p.push_back(start + i);
  return p;
}

RouterOptions agg_router(const std::string& replicas) {
  RouterOptions o;
  o.port = 0;
  o.mode = "agg";
  o.replica = replicas;
  o.policy = "kv_aware";
  // Small, so that a load report lagging behind the last answer (one
  // request still "running") does not outweigh a 48-token overlap.
  o.kv_load_weight = 8;
  o.health_interval_s = 0.2;
  return o;
}

bool synced(const RouterInstance& router, const std::string& url, double want = 1) {
  return metric_with(router.url(), "baton:router_kv_index_synced", {label("instance", url)}) == want;
}

TEST(KvRouting, SendsAPromptToTheInstanceHoldingItsPrefixAndHealsARestart) {
  const std::string model = fixture_model(kModel);
  auto a = start_instance(model, "agg");
  auto b = start_instance(model, "agg");
  ASSERT_TRUE(a && b);
  const std::string a_url = a->url(), b_url = b->url();
  const int b_port = b->port();
  auto router = start_router(agg_router(a_url + "," + b_url));
  ASSERT_TRUE(router);
  ASSERT_TRUE(wait_until([&] { return synced(*router, a_url) && synced(*router, b_url); }, 20.0));

  // B computes a 48-token prompt (three blocks of 16): its events reach the router.
  const std::vector<int> shared = prompt_of(48, 3);
  ASSERT_EQ(post_completion(b_url, completion_body(shared, 2, false)).http_status, 200);
  ASSERT_TRUE(wait_until(
      [&] { return metric_with(router->url(), "baton:router_kv_index_blocks", {label("instance", b_url)}) >= 3; },
      20.0));

  // Prompts extending it go to B, whatever the rotation would say.
  for (int i = 0; i < 4; ++i) {
    std::vector<int> p = shared;
    for (int j = 0; j < 5; ++j) p.push_back(200 + 10 * i + j);
    Completion c = post_completion(router->url(), completion_body(p, 2, false));
    ASSERT_EQ(c.http_status, 200) << c.raw;
  }
  const std::string base = router->url();
  EXPECT_EQ(metric_with(base, "baton:router_kv_picks_total", {label("instance", b_url), label("match", "longest")}), 4);
  EXPECT_EQ(metric_with(base, "baton:router_requests_total", {label("instance", b_url)}), 4);
  EXPECT_EQ(metric_with(base, "baton:router_requests_total", {label("instance", a_url)}), 0);
  EXPECT_EQ(metric_with(base, "baton:router_kv_overlap_tokens_total", {label("instance", b_url)}), 4 * 48);

  // B restarts on its port with an empty cache: the router notices the
  // stream end, resubscribes, and its snapshot says B holds nothing.
  b->stop();
  b.reset();
  ASSERT_TRUE(wait_until([&] { return synced(*router, b_url, 0); }, 20.0));
  b = start_instance(model, "agg", "shm", [&](InstanceOptions& o) { o.server.port = b_port; });
  ASSERT_TRUE(b);
  ASSERT_TRUE(wait_until([&] { return synced(*router, b_url); }, 20.0));
  EXPECT_GE(metric_with(base, "baton:router_kv_snapshots_total", {label("instance", b_url)}), 2);
  EXPECT_EQ(metric_with(base, "baton:router_kv_index_blocks", {label("instance", b_url)}), 0);
  std::vector<int> p = shared;
  p.push_back(250);
  ASSERT_EQ(post_completion(base, completion_body(p, 2, false)).http_status, 200);
  EXPECT_EQ(metric_with(base, "baton:router_kv_picks_total", {label("match", "none")}), 1);
}

TEST(KvRouting, ConditionalDisaggregationFollowsTheThreshold) {
  const std::string model = fixture_model(kModel);
  auto prefill = start_instance(model, "prefill");
  auto decode = start_instance(model, "decode");
  ASSERT_TRUE(prefill && decode);
  RouterOptions o = router_options(prefill->url(), decode->url());
  o.disagg = "conditional";
  o.disagg_max_local_prefill_tokens = 24;
  auto router = start_router(o);
  RouterOptions always = router_options(prefill->url(), decode->url());
  auto plain = start_router(always);
  ASSERT_TRUE(router && plain);
  ASSERT_TRUE(wait_until([&] { return synced(*router, decode->url()) && synced(*router, prefill->url()); }, 20.0));

  const std::string base = router->url();
  auto count = [&](const char* place, const char* reason) {
    return metric_with(base, "baton:router_pd_prefill_total", {label("place", place), label("reason", reason)});
  };
  // 20 tokens: prefilled on the decode instance, with the tokens the PD flow gives.
  const std::vector<int> short_prompt = prompt_of(20, 7);
  Completion local = post_completion(base, completion_body(short_prompt, 4, false));
  ASSERT_EQ(local.http_status, 200) << local.raw;
  EXPECT_EQ(count("local", "short"), 1);
  EXPECT_EQ(count("remote", "long"), 0);
  Completion remote = post_completion(plain->url(), completion_body(short_prompt, 4, false));
  ASSERT_EQ(remote.http_status, 200) << remote.raw;
  EXPECT_EQ(local.tokens, remote.tokens);
  EXPECT_EQ(local.tokens.size(), 4u);

  // 60 tokens: remote prefill, streamed answer.
  const std::vector<int> long_prompt = prompt_of(60, 300);
  Completion far = post_completion(base, completion_body(long_prompt, 4, true));
  ASSERT_EQ(far.http_status, 200) << far.raw;
  EXPECT_EQ(far.tokens.size(), 4u);
  EXPECT_EQ(count("remote", "long"), 1);
  EXPECT_EQ(count("local", "short"), 1);
  EXPECT_EQ(metric_with(base, "baton:router_requests_total", {label("instance", prefill->url())}), 1);

  // The decode instance cached the pulled blocks: the same 60 tokens again
  // are mostly cached there (48 of them), so the 12 left prefill locally.
  ASSERT_TRUE(wait_until(
      [&] { return metric_with(base, "baton:router_kv_index_blocks", {label("instance", decode->url())}) >= 3; },
      20.0));
  Completion again = post_completion(base, completion_body(long_prompt, 4, false));
  ASSERT_EQ(again.http_status, 200) << again.raw;
  EXPECT_EQ(again.tokens, far.tokens);
  EXPECT_EQ(count("local", "short"), 2);
  EXPECT_EQ(count("remote", "long"), 1);
  EXPECT_EQ(metric_with(base, "baton:router_requests_total", {label("instance", prefill->url())}), 1);
  EXPECT_EQ(metric_with(base, "baton:router_pd_local_prefill_tokens_total", {}), 20 + 12);
}

}  // namespace
}  // namespace baton::pd_test

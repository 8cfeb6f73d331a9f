#include "router/routing_policy.h"

#include <gtest/gtest.h>

#include <map>

namespace baton::router {
namespace {

std::vector<InstancePtr> make_instances(InstancePool& pool, int n) {
  for (int i = 0; i < n; ++i) pool.add("http://127.0.0.1:" + std::to_string(8100 + i), PoolRole::kDecode);
  return pool.healthy(PoolRole::kDecode);
}

TEST(RoutingPolicyTest, RoundRobinCyclesAndAvoidsExcluded) {
  InstancePool pool;
  auto c = make_instances(pool, 3);
  auto rr = make_routing_policy("round_robin").value();
  std::map<std::string, int> counts;
  for (int i = 0; i < 30; ++i) counts[rr->pick(c, {}, nullptr)->url]++;
  for (auto& [url, n] : counts) EXPECT_EQ(n, 10) << url;
  for (int i = 0; i < 10; ++i) EXPECT_NE(rr->pick(c, {}, c[1].get()), c[1]);
}

TEST(RoutingPolicyTest, LeastLoadedPicksFewestInFlight) {
  InstancePool pool;
  auto c = make_instances(pool, 3);
  auto ll = make_routing_policy("least_loaded").value();
  InFlightGuard a(c[0]), b(c[0]), d(c[2]);
  EXPECT_EQ(ll->pick(c, {}, nullptr), c[1]);
  InFlightGuard e(c[1]), f(c[1]);
  EXPECT_EQ(ll->pick(c, {}, nullptr), c[2]);
}

TEST(RoutingPolicyTest, PrefixAwareIsStickyAndSpreads) {
  InstancePool pool;
  auto c = make_instances(pool, 4);
  auto pa = make_routing_policy("prefix_aware").value();
  std::map<std::string, int> spread;
  for (int g = 0; g < 64; ++g) {
    RouteKey key{prefix_key_of("shared system prompt number " + std::to_string(g) + " ...")};
    auto first = pa->pick(c, key, nullptr);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(pa->pick(c, key, nullptr), first);
    spread[first->url]++;
  }
  EXPECT_EQ(spread.size(), 4u);  // every instance gets some prefixes
  // Removing another instance keeps a prefix where it was (rendezvous hashing).
  RouteKey key{"stable prefix"};
  auto home = pa->pick(c, key, nullptr);
  std::vector<InstancePtr> fewer;
  for (auto& i : c)
    if (i == home || fewer.size() < 2) fewer.push_back(i);
  EXPECT_EQ(pa->pick(fewer, key, nullptr), home);
}

TEST(RoutingPolicyTest, PrefixAwareSkipsAHotInstance) {
  InstancePool pool;
  auto c = make_instances(pool, 2);
  auto pa = make_routing_policy("prefix_aware").value();
  RouteKey key{"hot prefix"};
  auto home = pa->pick(c, key, nullptr);
  std::vector<std::unique_ptr<InFlightGuard>> load;
  for (int i = 0; i < 20; ++i) load.push_back(std::make_unique<InFlightGuard>(home));
  EXPECT_NE(pa->pick(c, key, nullptr), home);
}

TEST(RoutingPolicyTest, UnknownPolicyIsAnError) {
  auto p = make_routing_policy("random");
  ASSERT_FALSE(p.is_ok());
  EXPECT_NE(p.status().message().find("random"), std::string::npos);
}

TEST(InstancePoolTest, HealthTakesOutAndBringsBack) {
  InstancePool pool;
  auto a = pool.add("http://a", PoolRole::kPrefill);
  pool.add("http://b", PoolRole::kPrefill);
  EXPECT_EQ(pool.add("http://a", PoolRole::kPrefill), a);
  EXPECT_EQ(pool.healthy(PoolRole::kPrefill).size(), 2u);
  pool.report_check(a, false);
  EXPECT_EQ(pool.healthy(PoolRole::kPrefill).size(), 1u);
  pool.report_check(a, true);
  EXPECT_EQ(pool.healthy(PoolRole::kPrefill).size(), 2u);
  pool.remove("http://b", PoolRole::kPrefill);
  EXPECT_EQ(pool.all().size(), 1u);
  EXPECT_TRUE(pool.healthy(PoolRole::kDecode).empty());
}

// A snapshot saying `url` holds the first `num_blocks` blocks of `tokens`
// (block size 4), with `num_waiting` requests waiting.
void hold(KvIndex& index, const std::string& url, const std::vector<int32_t>& tokens, int num_blocks,
          int num_waiting = 0) {
  Json hashes = Json::array();
  std::vector<BlockHash> h;
  extend_block_hashes(h, tokens, 4);
  for (int b = 0; b < num_blocks; ++b) hashes.push_back(h[b]);
  Json snap = {{"type", "snapshot"}, {"epoch", 1},       {"seq", 0},
               {"block_size", 4},    {"hashes", hashes}, {"load", {{"num_waiting", num_waiting}}}};
  ASSERT_TRUE(index.apply(url, snap.dump()).is_ok());
}

std::vector<int32_t> tokens(int n, int start = 1) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(start + i);
  return t;
}

TEST(RoutingPolicyTest, KvAwarePicksTheLongestCachedPrefix) {
  InstancePool pool;
  auto c = make_instances(pool, 3);
  KvIndex index;
  auto prompt = tokens(41);  // 10 full blocks before the last token
  hold(index, c[0]->url, prompt, 2);
  hold(index, c[1]->url, prompt, 7);
  hold(index, c[2]->url, tokens(41, 900), 10);  // another prompt's blocks
  auto kv = make_routing_policy("kv_aware", &index).value();
  RouteKey key;
  key.prompt = PromptHashes(prompt);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(kv->pick(c, key, nullptr), c[1]);
    EXPECT_TRUE(key.note.consulted);
    EXPECT_EQ(key.note.overlap_tokens, 28);
    EXPECT_EQ(key.note.best_overlap_tokens, 28);
  }
  // The retry of a failed request avoids it.
  EXPECT_EQ(kv->pick(c, key, c[1].get()), c[0]);
  // An unknown prompt: by load alone, spread over equals.
  std::map<std::string, int> spread;
  for (int i = 0; i < 30; ++i) spread[kv->pick(c, RouteKey{}, nullptr)->url]++;
  for (const auto& inst : c) EXPECT_EQ(spread[inst->url], 10);
}

TEST(RoutingPolicyTest, KvAwareWeighsOverlapAgainstLoad) {
  InstancePool pool;
  auto c = make_instances(pool, 2);
  KvIndex index;
  auto prompt = tokens(41);
  hold(index, c[0]->url, prompt, 10, /*num_waiting=*/3);  // 40 tokens cached, 3 waiting
  hold(index, c[1]->url, prompt, 0);
  RouteKey key;
  key.prompt = PromptHashes(prompt);
  // 3 requests at 10 tokens each cost less than 40 uncached tokens.
  EXPECT_EQ(make_routing_policy("kv_aware", &index, {10.0}).value()->pick(c, key, nullptr), c[0]);
  // At 20 tokens each they cost more.
  EXPECT_EQ(make_routing_policy("kv_aware", &index, {20.0}).value()->pick(c, key, nullptr), c[1]);
  EXPECT_EQ(key.note.best_overlap_tokens, 40);
  EXPECT_EQ(key.note.overlap_tokens, 0);
  // The router's own in-flight count counts when the report lags.
  InFlightGuard g1(c[1]), g2(c[1]), g3(c[1]), g4(c[1]), g5(c[1]);
  EXPECT_EQ(make_routing_policy("kv_aware", &index, {20.0}).value()->pick(c, key, nullptr), c[0]);
}

TEST(RoutingPolicyTest, KvAwareNeedsAnIndex) {
  EXPECT_FALSE(make_routing_policy("kv_aware").is_ok());
  KvIndex index;
  EXPECT_FALSE(make_routing_policy("kv_aware", &index, {-1.0}).is_ok());
}

}  // namespace
}  // namespace baton::router

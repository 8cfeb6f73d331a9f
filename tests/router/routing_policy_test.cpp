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

}  // namespace
}  // namespace baton::router

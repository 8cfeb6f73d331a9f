// The role controller's decisions over synthetic load signals: a move only
// after one side's pressure has stayed over the other's by the margin for
// the hold time (a break restarts the hold), toward the loaded side, of the
// other side's least loaded instance; never the last instance of a side;
// one switch in flight; a cooldown after it; sides without a synced load
// decide nothing.
#include "router/role_controller.h"

#include <gtest/gtest.h>

namespace baton::router {
namespace {

RoleControlOptions opts() {
  RoleControlOptions o;
  o.margin = 2.0;
  o.hold_s = 10.0;
  o.cooldown_s = 30.0;
  o.kv_usage_weight = 4.0;
  return o;
}

RoleSignal sig(const std::string& url, PoolRole role, int waiting, int running = 0, double kv_usage = 0.0) {
  RoleSignal s;
  s.url = url;
  s.role = role;
  s.known = true;
  s.load.num_waiting = waiting;
  s.load.num_running = running;
  s.load.kv_usage = kv_usage;
  return s;
}

// One prefill with `p_waiting` queued, two decodes with `d_waiting` each
// (d1 busier than d2).
std::vector<RoleSignal> one_p_two_d(int p_waiting, int d_waiting) {
  return {sig("p1", PoolRole::kPrefill, p_waiting), sig("d1", PoolRole::kDecode, d_waiting, 8),
          sig("d2", PoolRole::kDecode, d_waiting, 2)};
}

TEST(RoleControllerTest, MovesOnlyAfterTheMarginHeldForTheHoldTime) {
  RoleController c(opts());
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 0.0));  // over by 9: the hold starts
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 5.0));
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 9.9));
  auto move = c.decide(one_p_two_d(10, 1), 10.0);
  ASSERT_TRUE(move);
  EXPECT_EQ(move->url, "d2");  // the least loaded decode (2 running against 8)
  EXPECT_EQ(move->from, PoolRole::kDecode);
  EXPECT_EQ(move->to, PoolRole::kPrefill);
  EXPECT_EQ(move->reason, "prefill_queue");
  EXPECT_TRUE(c.switch_in_flight());
}

TEST(RoleControllerTest, ABreakInTheMarginRestartsTheHold) {
  RoleController c(opts());
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 0.0));
  EXPECT_FALSE(c.decide(one_p_two_d(3, 2), 6.0));   // over by 1 only: within the margin
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 7.0));  // the hold restarts here
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 16.0));
  EXPECT_TRUE(c.decide(one_p_two_d(10, 1), 17.0));
}

TEST(RoleControllerTest, WithinTheMarginNothingMoves) {
  RoleController c(opts());
  for (double t = 0; t < 100; t += 5) EXPECT_FALSE(c.decide(one_p_two_d(3, 1), t));  // over by exactly 2
}

TEST(RoleControllerTest, NeverTheLastDecodeNorTheLastPrefill) {
  RoleController c(opts());
  std::vector<RoleSignal> one_each = {sig("p1", PoolRole::kPrefill, 50), sig("d1", PoolRole::kDecode, 0)};
  for (double t = 0; t <= 60; t += 5) EXPECT_FALSE(c.decide(one_each, t)) << t;
  // Decode side over, one prefill: it stays.
  one_each = {sig("p1", PoolRole::kPrefill, 0), sig("d1", PoolRole::kDecode, 50)};
  for (double t = 100; t <= 160; t += 5) EXPECT_FALSE(c.decide(one_each, t)) << t;
}

TEST(RoleControllerTest, DecodeSideOverMovesAPrefillAndKvUsageCounts) {
  RoleController c(opts());
  // Decodes queue 1 each but their caches are full: 1 + 4 * 1.0 = 5 against
  // the prefills' 0 + 4 * 0.1 = 0.4.
  std::vector<RoleSignal> s = {sig("p1", PoolRole::kPrefill, 0, 3, 0.1), sig("p2", PoolRole::kPrefill, 0, 1, 0.1),
                               sig("d1", PoolRole::kDecode, 1, 8, 1.0)};
  EXPECT_FALSE(c.decide(s, 0.0));
  auto move = c.decide(s, 10.0);
  ASSERT_TRUE(move);
  EXPECT_EQ(move->url, "p2");
  EXPECT_EQ(move->from, PoolRole::kPrefill);
  EXPECT_EQ(move->to, PoolRole::kDecode);
  EXPECT_EQ(move->reason, "decode_queue");
}

TEST(RoleControllerTest, OneSwitchInFlightThenACooldown) {
  RoleController c(opts());
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 0.0));
  ASSERT_TRUE(c.decide(one_p_two_d(10, 1), 10.0));
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 20.0));  // still in flight
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 40.0));
  c.switch_finished(41.0);
  EXPECT_FALSE(c.switch_in_flight());
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 50.0));  // cooling down until 71
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 70.9));
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 71.0));  // the hold starts again
  EXPECT_FALSE(c.decide(one_p_two_d(10, 1), 80.0));
  EXPECT_TRUE(c.decide(one_p_two_d(10, 1), 81.0));
}

TEST(RoleControllerTest, UnsyncedLoadDecidesNothing) {
  RoleController c(opts());
  std::vector<RoleSignal> s = one_p_two_d(10, 1);
  s[0].known = false;  // the only prefill's stream is not synced
  for (double t = 0; t <= 30; t += 5) EXPECT_FALSE(c.decide(s, t));
  // An unsynced decode still counts as an instance of its side (not moved,
  // and it keeps the side from being "the last").
  s = one_p_two_d(10, 1);
  s[2].known = false;
  EXPECT_FALSE(c.decide(s, 100.0));
  auto move = c.decide(s, 110.0);
  ASSERT_TRUE(move);
  EXPECT_EQ(move->url, "d1");
}

TEST(RoleControllerTest, OptionsOutOfRangeAreNamed) {
  RoleControlOptions o = opts();
  EXPECT_TRUE(o.check().is_ok());
  o.margin = -1;
  EXPECT_NE(o.check().message().find("--role-margin"), std::string::npos);
  o = opts();
  o.interval_s = 0;
  EXPECT_NE(o.check().message().find("--role-interval-s"), std::string::npos);
  o = opts();
  o.drain_timeout_s = 1e9;
  EXPECT_NE(o.check().message().find("--role-drain-timeout-s"), std::string::npos);
}

}  // namespace
}  // namespace baton::router

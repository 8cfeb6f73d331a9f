// LeaseTable on a fake clock: a lease ends by expiry exactly at its length,
// renew pushes that back, done and release end it at once, and only its
// token and its blocks are honoured.
#include <gtest/gtest.h>

#include "pd/lease_table.h"

namespace baton {
namespace {

class LeaseTableTest : public ::testing::Test {
 protected:
  TimePoint now_ = SteadyClock::now();
  LeaseTable table_{1000, [this] { return now_; }};
  void advance_ms(int64_t ms) { now_ += std::chrono::milliseconds(ms); }
};

TEST_F(LeaseTableTest, ExpiresExactlyAtItsLength) {
  EXPECT_TRUE(table_.start("a", {1, 2, 3}, "tok").empty());
  EXPECT_EQ(table_.stats().num_blocks_pinned, 3);
  advance_ms(999);
  EXPECT_FALSE(table_.has_expired());
  EXPECT_TRUE(table_.expire().empty());
  advance_ms(1);
  EXPECT_TRUE(table_.has_expired());
  auto expired = table_.expire();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0], (std::vector<int>{1, 2, 3}));
  const LeaseStats s = table_.stats();
  EXPECT_EQ(s.num_leases, 0);
  EXPECT_EQ(s.num_blocks_pinned, 0);
  EXPECT_EQ(s.num_lease_expirations, 1);
  EXPECT_TRUE(table_.empty());
}

TEST_F(LeaseTableTest, RenewPushesExpiryBack) {
  table_.start("a", {4}, "tok");
  advance_ms(900);
  EXPECT_TRUE(table_.renew("a"));
  advance_ms(900);  // 1800 ms after the start, 900 after the renewal
  EXPECT_TRUE(table_.expire().empty());
  advance_ms(100);
  EXPECT_EQ(table_.expire().size(), 1u);
  EXPECT_FALSE(table_.renew("a"));  // gone
  EXPECT_EQ(table_.stats().num_lease_renewals, 1);
}

TEST_F(LeaseTableTest, DoneAndReleaseEndAtOnceAndCountApart) {
  table_.start("a", {1}, "ta");
  table_.start("b", {2, 3}, "tb");
  bool found = false;
  EXPECT_EQ(table_.end("a", LeaseEnd::kDone, &found), (std::vector<int>{1}));
  EXPECT_TRUE(found);
  EXPECT_EQ(table_.end("b", LeaseEnd::kReleased, &found), (std::vector<int>{2, 3}));
  EXPECT_TRUE(table_.end("b", LeaseEnd::kReleased, &found).empty());
  EXPECT_FALSE(found);
  const LeaseStats s = table_.stats();
  EXPECT_EQ(s.num_leases_done, 1);
  EXPECT_EQ(s.num_leases_released, 1);
  EXPECT_EQ(s.num_leases, 0);
  advance_ms(5000);
  EXPECT_TRUE(table_.expire().empty());  // nothing left to expire
}

TEST_F(LeaseTableTest, OnlyItsTokenAndItsBlocksAreHonoured) {
  table_.start("a", {5, 6, 7}, "secret-token");
  EXPECT_TRUE(table_.check({"a", "secret-token"}, nullptr).is_ok());
  EXPECT_EQ(table_.check({"a", "secret-tokeN"}, nullptr).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(table_.check({"a", ""}, nullptr).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(table_.check({"b", "secret-token"}, nullptr).code(), StatusCode::kNotFound);
  const std::vector<BlockRun> inside = {{5, 0, 3}};
  const std::vector<BlockRun> past_end = {{6, 0, 2}, {8, 2, 1}};
  EXPECT_TRUE(table_.check({"a", "secret-token"}, &inside).is_ok());
  Status st = table_.check({"a", "secret-token"}, &past_end);
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("block 8"), std::string::npos) << st.message();
  EXPECT_EQ(table_.stats().num_grants_denied, 4);
}

TEST_F(LeaseTableTest, ALeaseWithoutTokenIsNeverGranted) {
  table_.start("a", {1}, "");
  EXPECT_EQ(table_.check({"a", ""}, nullptr).code(), StatusCode::kPermissionDenied);
}

TEST_F(LeaseTableTest, ReusedIdReplacesTheLiveLease) {
  table_.start("a", {1, 2}, "t1");
  EXPECT_EQ(table_.start("a", {3}, "t2"), (std::vector<int>{1, 2}));
  EXPECT_EQ(table_.stats().num_leases, 1);
  EXPECT_EQ(table_.stats().num_blocks_pinned, 1);
  EXPECT_EQ(table_.check({"a", "t1"}, nullptr).code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(table_.check({"a", "t2"}, nullptr).is_ok());
}

}  // namespace
}  // namespace baton

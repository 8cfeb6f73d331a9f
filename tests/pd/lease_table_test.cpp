// LeaseTable on a fake clock: a lease ends by expiry exactly at its length,
// renew pushes that back, done and release end it at once, and only its
// token and its blocks are honoured; a streamed lease serves only the blocks
// announced final, answers progress, takes its blocks over at the end, and
// once stopped serves nothing.
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

TEST_F(LeaseTableTest, StreamedLeaseServesOnlyWhatIsFinalThenOwnsTheBlocks) {
  table_.start_streamed("a", "tok");
  EXPECT_EQ(table_.stats().num_blocks_pinned, 0);
  EXPECT_TRUE(table_.publish("a", {5, 6, 7}, 1));
  const std::vector<BlockRun> first = {{5, 0, 1}};
  const std::vector<BlockRun> second = {{6, 0, 1}};
  EXPECT_TRUE(table_.check({"a", "tok"}, &first).is_ok());
  EXPECT_EQ(table_.check({"a", "tok"}, &second).code(), StatusCode::kPermissionDenied);
  auto p = table_.progress({"a", "tok"}, 0, 0);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ((*p)["block_ids"], Json::array({5}));
  EXPECT_FALSE((*p)["finished"].get<bool>());
  EXPECT_EQ(table_.progress({"a", "wrong"}, 0, 0).status().code(), StatusCode::kPermissionDenied);
  std::vector<int> blocks = {5, 6, 7};
  EXPECT_TRUE(table_.finish_streamed("a", blocks));
  EXPECT_TRUE(blocks.empty());
  EXPECT_EQ(table_.stats().num_blocks_pinned, 3);
  p = table_.progress({"a", "tok"}, 1, 0);
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ((*p)["block_ids"], Json::array({6, 7}));
  EXPECT_TRUE((*p)["finished"].get<bool>());
  bool found = false;
  EXPECT_EQ(table_.end("a", LeaseEnd::kDone, &found), (std::vector<int>{5, 6, 7}));
}

TEST_F(LeaseTableTest, StoppedStreamServesNothingAndEndsWithoutAReaderAtOnce) {
  table_.start_streamed("a", "tok");
  table_.publish("a", {5, 6}, 1);
  // No reader came: the blocks go straight back.
  EXPECT_EQ(table_.abort_streamed("a", "it was aborted", {5, 6}), (std::vector<int>{5, 6}));
  EXPECT_TRUE(table_.empty());
  table_.start_streamed("b", "tok");
  table_.publish("b", {8, 9}, 1);
  ASSERT_TRUE(table_.progress({"b", "tok"}, 0, 0).is_ok());
  // Preempted: the final block moved; the lease stops for good.
  EXPECT_FALSE(table_.publish("b", {3, 4}, 1));
  const std::vector<BlockRun> run = {{8, 0, 1}};
  EXPECT_EQ(table_.check({"b", "tok"}, &run).code(), StatusCode::kAborted);
  auto p = table_.progress({"b", "tok"}, 1, 0);
  EXPECT_EQ(p.status().code(), StatusCode::kAborted);
  EXPECT_NE(p.status().message().find("preempted"), std::string::npos) << p.status().message();
  std::vector<int> blocks = {3, 4};
  EXPECT_FALSE(table_.finish_streamed("b", blocks)) << "the caller frees them";
  // A streamed lease still computing expires like any other, owning nothing.
  table_.start_streamed("c", "tok");
  advance_ms(1000);
  EXPECT_TRUE(table_.expire().empty());
  EXPECT_EQ(table_.stats().num_lease_expirations, 2);
}

}  // namespace
}  // namespace baton

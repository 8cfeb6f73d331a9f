// The double-buffered staging pipeline of the tcp transport's device path:
// chunks in order, a buffer never written while the other stage uses it,
// the two stages really overlapping, and errors from either stage returned.
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "kv_transfer/staged_copy.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

TEST(StagedChunks, SplitRunsIntoWholeBlockChunks) {
  std::vector<BlockRun> runs = {{10, 0, 5}, {40, 7, 2}};
  auto remote = staged_chunks(runs, 100, 250, true);  // 2 blocks a chunk
  ASSERT_EQ(remote.size(), 4u);
  EXPECT_EQ(remote[0].first_block, 10);
  EXPECT_EQ(remote[0].num_bytes, 200u);
  EXPECT_EQ(remote[2].first_block, 14);
  EXPECT_EQ(remote[2].num_bytes, 100u);
  EXPECT_EQ(remote[3].first_block, 40);
  EXPECT_EQ(staging_buffer_bytes(remote), 200u);
  auto local = staged_chunks(runs, 100, 50, false);  // smaller than a block: one block a chunk
  ASSERT_EQ(local.size(), 7u);
  EXPECT_EQ(local[5].first_block, 7);
  EXPECT_TRUE(staged_chunks({}, 100, 250, true).empty());
}

// Each chunk carries its own byte pattern; the consumer checks it, so a buffer
// overwritten by the other stage too early fails. Sleeps make the stages overlap.
void check_direction(StageDirection dir) {
  const size_t n = 9, bytes = 4096;
  std::atomic<int> active{0}, max_active{0};
  auto enter = [&] {
    int a = ++active;
    int m = max_active.load();
    while (a > m && !max_active.compare_exchange_weak(m, a)) {
    }
  };
  std::vector<size_t> order;
  std::mutex mu;
  // Each stage takes 5 ms (simulated copy work), so that stages overlap
  // when the pipeline lets them; the test measures that overlap.
  StageFn fill = [&](size_t i, uint8_t* buf) {
    enter();
    std::this_thread::sleep_for(5ms);
    std::memset(buf, static_cast<int>(i + 1), bytes);
    --active;
    return Status::ok();
  };
  StageFn check = [&](size_t i, uint8_t* buf) {
    enter();
    std::this_thread::sleep_for(5ms);
    for (size_t b = 0; b < bytes; ++b) {
      if (buf[b] != static_cast<uint8_t>(i + 1)) {
        --active;
        return data_loss("chunk {} byte {} is {}", i, b, buf[b]);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
    }
    --active;
    return Status::ok();
  };
  // kToHost: copy fills, io sends (checks); kToDevice: io reads (fills), copy empties (checks).
  std::vector<uint8_t> a(bytes), b(bytes);
  const std::array<uint8_t*, 2> buffers = {a.data(), b.data()};
  Status st = dir == StageDirection::kToHost ? run_staged(dir, n, buffers, fill, check)
                                             : run_staged(dir, n, buffers, check, fill);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(order.size(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(max_active.load(), 2) << "the stages never overlapped";
}

TEST(RunStaged, ToHostOverlapsCopyWithSendInOrder) { check_direction(StageDirection::kToHost); }
TEST(RunStaged, ToDeviceOverlapsReadWithCopyInOrder) { check_direction(StageDirection::kToDevice); }

TEST(RunStaged, FirstErrorOfEitherStageIsReturned) {
  for (auto dir : {StageDirection::kToHost, StageDirection::kToDevice}) {
    for (bool copy_fails : {true, false}) {
      std::atomic<int> calls{0};
      StageFn copy = [&](size_t i, uint8_t*) {
        ++calls;
        return copy_fails && i == 3 ? unavailable("copy {} failed", i) : Status::ok();
      };
      StageFn io = [&](size_t i, uint8_t*) {
        ++calls;
        return !copy_fails && i == 2 ? unavailable("io {} failed", i) : Status::ok();
      };
      std::vector<uint8_t> a(64), b(64);
      Status st = run_staged(dir, 8, {a.data(), b.data()}, copy, io);
      ASSERT_FALSE(st.is_ok());
      EXPECT_NE(st.message().find(copy_fails ? "copy 3" : "io 2"), std::string::npos) << st.message();
      EXPECT_LT(calls.load(), 16) << "the pipeline went on after the error";
    }
  }
  EXPECT_TRUE(run_staged(StageDirection::kToHost, 0, {nullptr, nullptr}, nullptr, nullptr).is_ok());
}

// The caller's two buffers are the only ones used, alternately (chunk i in
// buffers[i % 2]), in both directions; missing or aliased buffers are refused.
TEST(RunStaged, UsesTheCallersTwoBuffersAlternately) {
  for (auto dir : {StageDirection::kToHost, StageDirection::kToDevice}) {
    std::vector<uint8_t> a(32), b(32);
    std::mutex mu;
    std::vector<std::pair<size_t, uint8_t*>> seen;
    StageFn record = [&](size_t i, uint8_t* buf) {
      std::lock_guard<std::mutex> lock(mu);
      seen.emplace_back(i, buf);
      return Status::ok();
    };
    ASSERT_TRUE(run_staged(dir, 5, {a.data(), b.data()}, record, record).is_ok());
    ASSERT_EQ(seen.size(), 10u);
    for (const auto& [i, buf] : seen) EXPECT_EQ(buf, i % 2 == 0 ? a.data() : b.data()) << i;
    for (std::array<uint8_t*, 2> bad :
         {std::array<uint8_t*, 2>{nullptr, b.data()}, std::array<uint8_t*, 2>{a.data(), nullptr},
          std::array<uint8_t*, 2>{a.data(), a.data()}}) {
      Status st = run_staged(dir, 3, bad, record, record);
      EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
      EXPECT_NE(st.message().find("staging buffers"), std::string::npos) << st.message();
    }
  }
}

}  // namespace
}  // namespace baton

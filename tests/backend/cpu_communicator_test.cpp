// CpuCommunicator: ranks as threads of one process. The collectives' results
// on every rank, bitwise agreement of the sums, and a group that breaks
// (abort, a missing rank, mismatched counts) instead of hanging.
#include "backend/cpu/cpu_communicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

namespace baton {
namespace {

using std::chrono::milliseconds;

// Runs body(rank, comm) on one thread per rank and returns each rank's status.
std::vector<Status> run_ranks(std::vector<std::unique_ptr<CpuCommunicator>>& comms,
                              const std::function<Status(int, Communicator&)>& body) {
  std::vector<Status> status(comms.size());
  std::vector<std::thread> threads;
  for (size_t r = 0; r < comms.size(); ++r)
    threads.emplace_back([&, r] { status[r] = body(static_cast<int>(r), *comms[r]); });
  for (std::thread& t : threads) t.join();
  return status;
}

TEST(CpuCommunicator, AllReduceSumsInPlaceWithTheSameBitsOnEveryRank) {
  constexpr int kRanks = 3;
  constexpr int64_t kCount = 1001;  // not a multiple of the rank count
  auto comms = CpuCommunicator::make_group(kRanks, milliseconds(10000));
  std::vector<std::vector<float>> data(kRanks, std::vector<float>(kCount));
  for (int r = 0; r < kRanks; ++r)
    for (int64_t i = 0; i < kCount; ++i) data[r][i] = 0.1f * static_cast<float>(i) + 1.0f / static_cast<float>(r + 3);
  const std::vector<std::vector<float>> inputs = data;
  auto status = run_ranks(comms, [&](int r, Communicator& c) {
    EXPECT_EQ(c.rank(), r);
    EXPECT_EQ(c.world_size(), kRanks);
    for (int round = 0; round < 3; ++round) {  // the group is reusable; each round sums the last
      Status st = c.all_reduce_sum(data[r].data(), kCount);
      if (!st.is_ok()) return st;
    }
    return Status::ok();
  });
  for (const Status& st : status) ASSERT_TRUE(st.is_ok()) << st.to_string();
  for (int64_t i = 0; i < kCount; ++i) {
    float expected = 0.0f;
    for (int r = 0; r < kRanks; ++r) expected += inputs[r][i];
    expected *= static_cast<float>(kRanks * kRanks);  // three rounds: x3, x3 again
    EXPECT_NEAR(data[0][i], expected, 1e-3f * std::abs(expected)) << "element " << i;
    for (int r = 1; r < kRanks; ++r) EXPECT_EQ(std::memcmp(&data[r][i], &data[0][i], sizeof(float)), 0) << i;
  }
}

TEST(CpuCommunicator, AllGatherAndBroadcast) {
  constexpr int kRanks = 4;
  auto comms = CpuCommunicator::make_group(kRanks, milliseconds(10000));
  std::vector<std::vector<float>> gathered(kRanks, std::vector<float>(kRanks * 2));
  std::vector<std::vector<float>> shared(kRanks, std::vector<float>(3, -1.0f));
  auto status = run_ranks(comms, [&](int r, Communicator& c) {
    const float mine[2] = {static_cast<float>(r), static_cast<float>(10 * r)};
    BATON_RETURN_IF_ERROR(c.all_gather(mine, 2, gathered[r].data()));
    if (r == 2) shared[r] = {7.0f, 8.0f, 9.0f};
    return c.broadcast(shared[r].data(), 3, 2);
  });
  for (const Status& st : status) ASSERT_TRUE(st.is_ok()) << st.to_string();
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_EQ(gathered[r], (std::vector<float>{0, 0, 1, 10, 2, 20, 3, 30})) << "rank " << r;
    EXPECT_EQ(shared[r], (std::vector<float>{7, 8, 9})) << "rank " << r;
  }
}

TEST(CpuCommunicator, AbortWakesTheRanksWaitingAndFailsLaterCollectives) {
  auto comms = CpuCommunicator::make_group(2, milliseconds(60000));
  std::vector<float> x(4, 1.0f);
  Status waited;
  std::thread waiter([&] { waited = comms[0]->all_reduce_sum(x.data(), 4); });
  comms[1]->abort(internal_error("rank 1 failed its matmul"));
  waiter.join();
  EXPECT_EQ(waited.code(), StatusCode::kInternal);
  EXPECT_NE(waited.message().find("rank 1 failed its matmul"), std::string::npos);
  EXPECT_EQ(comms[1]->all_reduce_sum(x.data(), 4).code(), StatusCode::kInternal);
}

TEST(CpuCommunicator, AMissingRankTimesOutNamingTheWaiter) {
  auto comms = CpuCommunicator::make_group(2, milliseconds(200));
  std::vector<float> x(4, 1.0f);
  const auto start = std::chrono::steady_clock::now();
  Status st = comms[0]->all_reduce_sum(x.data(), 4);  // rank 1 never comes
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(st.message().find("rank 0 waited 200 ms"), std::string::npos) << st.to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(comms[1]->all_gather(x.data(), 1, x.data()).code(), StatusCode::kDeadlineExceeded);
}

TEST(CpuCommunicator, MismatchedCountsBreakTheGroup) {
  auto comms = CpuCommunicator::make_group(2, milliseconds(10000));
  std::vector<std::vector<float>> data(2, std::vector<float>(8, 1.0f));
  auto status = run_ranks(comms, [&](int r, Communicator& c) { return c.all_reduce_sum(data[r].data(), 4 + r); });
  for (const Status& st : status) {
    EXPECT_EQ(st.code(), StatusCode::kInternal);
    EXPECT_NE(st.message().find("elements"), std::string::npos) << st.to_string();
  }
}

}  // namespace
}  // namespace baton

// A tensor parallel group whose rank hangs in its own work (not at a
// collective): the step fails within the hang timeout, health() names the
// rank, and every later step fails at once (issue 16: nothing hangs).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "backend/cpu/cpu_communicator.h"
#include "backend/tensor_parallel_backend.h"
#include "support/wait.h"

namespace baton {
namespace {

using namespace std::chrono_literals;

// A rank that computes nothing: it returns at once, fails as a rank left
// waiting at a collective does, or hangs until released.
class ScriptedRank final : public Backend {
 public:
  enum class Mode { kOk, kFail, kHang };
  explicit ScriptedRank(Mode mode) : mode_(mode) {}
  const ModelConfig& model_config() const override { return config_; }
  std::string device_name() const override { return "scripted rank"; }
  size_t kv_block_bytes(int) const override { return 0; }
  Status init_kv_cache(int, int) override { return Status::ok(); }
  KvMemory kv_memory() override { return {}; }
  Result<StepOutput> execute(const StepInput&) override {
    if (mode_ == Mode::kFail) return deadline_exceeded("no peer arrived at the all-reduce");
    if (mode_ == Mode::kHang) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return released_; });
      return aborted("released after the test");
    }
    return StepOutput{};
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  const Mode mode_;
  ModelConfig config_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

struct Group {
  std::unique_ptr<TensorParallelBackend> backend;
  std::vector<ScriptedRank*> ranks;
};

Group make_group(std::vector<ScriptedRank::Mode> modes, std::chrono::milliseconds hang_timeout) {
  Group g;
  auto comms_group = CpuCommunicator::make_group(static_cast<int>(modes.size()), 1000ms);
  std::vector<std::unique_ptr<Communicator>> comms;
  std::vector<std::unique_ptr<Backend>> ranks;
  for (size_t r = 0; r < modes.size(); ++r) {
    auto rank = std::make_unique<ScriptedRank>(modes[r]);
    g.ranks.push_back(rank.get());
    ranks.push_back(std::move(rank));
    comms.push_back(std::move(comms_group[r]));
  }
  auto tp = TensorParallelBackend::create(std::move(comms), std::move(ranks), hang_timeout);
  EXPECT_TRUE(tp.is_ok()) << tp.status().to_string();
  if (tp.is_ok()) g.backend = std::move(tp).value();
  return g;
}

TEST(TensorParallelFaults, AWorkerRankThatHangsFailsTheStepAndEveryLaterOne) {
  using Mode = ScriptedRank::Mode;
  Group g = make_group({Mode::kOk, Mode::kHang}, 200ms);
  ASSERT_NE(g.backend, nullptr);
  EXPECT_TRUE(g.backend->health().is_ok());
  const auto start = std::chrono::steady_clock::now();
  Result<StepOutput> out = g.backend->execute(StepInput{});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(out.status().message().find("rank(s) 1 of 2 hung"), std::string::npos) << out.status().to_string();
  EXPECT_EQ(g.backend->health().message(), out.status().message());
  const auto again_start = std::chrono::steady_clock::now();
  Result<StepOutput> again = g.backend->execute(StepInput{});  // at once, with the same error
  EXPECT_LT(std::chrono::steady_clock::now() - again_start, 100ms);
  EXPECT_EQ(again.status().message(), out.status().message());
  g.ranks[1]->release();  // so the group can be destroyed
}

TEST(TensorParallelFaults, HealthNamesRankZeroHungWhileTheOthersFailed) {
  using Mode = ScriptedRank::Mode;
  Group g = make_group({Mode::kHang, Mode::kFail, Mode::kFail}, 200ms);
  ASSERT_NE(g.backend, nullptr);
  Result<StepOutput> out = StepOutput{};
  std::thread caller([&] { out = g.backend->execute(StepInput{}); });  // rank 0 runs on the caller's thread
  EXPECT_TRUE(testing::wait_until([&] { return !g.backend->health().is_ok(); }, 5.0, 10));
  const Status health = g.backend->health();
  EXPECT_EQ(health.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(health.message().find("rank(s) 0 of 3 hung"), std::string::npos) << health.to_string();
  g.ranks[0]->release();
  caller.join();
  EXPECT_FALSE(out.is_ok());
  EXPECT_FALSE(g.backend->health().is_ok());  // the failed ranks broke the group
}

TEST(TensorParallelFaults, AFailedRankBreaksTheGroupForGood) {
  using Mode = ScriptedRank::Mode;
  Group g = make_group({Mode::kOk, Mode::kFail}, 200ms);
  ASSERT_NE(g.backend, nullptr);
  Result<StepOutput> out = g.backend->execute(StepInput{});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("tensor parallel rank 1 of 2"), std::string::npos) << out.status().to_string();
  EXPECT_NE(out.status().message().find("no peer arrived"), std::string::npos) << out.status().to_string();
  EXPECT_EQ(g.backend->health().message(), out.status().message());
}

}  // namespace
}  // namespace baton

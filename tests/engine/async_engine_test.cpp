#include "engine/async_engine.h"

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "engine/engine_test_util.h"
#include "support/wait.h"

namespace baton {
namespace {

using namespace baton::testing;

// Gathers one request's stream; wait() blocks until its final output.
struct Stream {
  std::mutex mu;
  std::vector<int32_t> ids;
  std::vector<double> times;
  int num_outputs = 0;
  int num_after_final = 0;
  bool finished = false;
  FinishReason reason = FinishReason::kNone;
  std::promise<void> done;

  OutputCallback callback() {
    return [this](RequestOutput o) {
      std::lock_guard<std::mutex> lock(mu);
      if (finished) {
        ++num_after_final;
        return;
      }
      ++num_outputs;
      ids.insert(ids.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      times.insert(times.end(), o.new_token_times_s.begin(), o.new_token_times_s.end());
      if (o.finished) {
        finished = true;
        reason = o.finish_reason;
        done.set_value();
      }
    };
  }
  bool wait(double seconds = 10) {
    return done.get_future().wait_for(std::chrono::duration<double>(seconds)) == std::future_status::ready;
  }
};

// Wraps a stream's callback: `reached` becomes ready once `n` tokens arrived.
OutputCallback signal_after(int n, Stream& s, std::promise<void>& reached) {
  auto seen = std::make_shared<int>(0);
  auto inner = s.callback();
  return [=, &reached](RequestOutput o) {
    const bool before = *seen < n;
    *seen += static_cast<int>(o.new_token_ids.size());
    if (before && *seen >= n) reached.set_value();
    inner(std::move(o));
  };
}

TEST(AsyncEngine, StreamsTokensFromManyThreads) {
  EngineOptions opts;
  opts.block_size = 4;
  opts.num_kv_blocks = 64;
  opts.max_num_batched_tokens = 16;
  AsyncEngine engine(make_engine(opts));
  constexpr int kN = 8;
  std::vector<std::unique_ptr<Stream>> streams;
  for (int i = 0; i < kN; ++i) streams.push_back(std::make_unique<Stream>());
  std::vector<std::thread> threads;
  for (int i = 0; i < kN; ++i) {
    threads.emplace_back([&, i] {
      auto st = engine.submit(gen("r" + std::to_string(i), tokens(3 + 4 * i, 10 * i), 12), streams[i]->callback());
      EXPECT_TRUE(st.is_ok()) << st.to_string();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(streams[i]->wait()) << i;
    EXPECT_EQ(streams[i]->ids, fake_reference(tokens(3 + 4 * i, 10 * i), 12)) << i;
    EXPECT_EQ(streams[i]->reason, FinishReason::kLength);
    EXPECT_GT(streams[i]->num_outputs, 1);  // streamed, not one final blob
    ASSERT_EQ(streams[i]->times.size(), 12u);
    for (size_t k = 1; k < 12; ++k) EXPECT_GE(streams[i]->times[k], streams[i]->times[k - 1]);
  }
  engine.shutdown();
  EngineStats s = engine.stats();
  EXPECT_EQ(s.generation_tokens_total, kN * 12);
  EXPECT_EQ(s.num_kv_blocks_free, s.num_kv_blocks_total);
  for (auto& st : streams) EXPECT_EQ(st->num_after_final, 0);
}

// With a backend that runs steps on another thread (as a GPU does), the
// engine thread delivers a step's outputs while the next step runs; each
// stream still gets exactly its tokens, in order, and nothing after its end.
TEST(AsyncEngine, DeliversWhileTheNextStepRunsInOrder) {
  EngineOptions opts;
  opts.block_size = 4;
  opts.num_kv_blocks = 128;
  opts.max_num_batched_tokens = 16;
  FakeBackend* backend = nullptr;
  auto core = make_engine(opts, &backend);
  backend->async_submit = true;
  AsyncEngine engine(std::move(core));
  constexpr int kN = 6;
  std::atomic<int> delivered_in_flight{0};
  std::vector<std::unique_ptr<Stream>> streams;
  for (int i = 0; i < kN; ++i) {
    streams.push_back(std::make_unique<Stream>());
    auto inner = streams.back()->callback();
    ASSERT_TRUE(engine
                    .submit(gen("r" + std::to_string(i), tokens(2 + 5 * i, 7 * i), 10 + i),
                            [&, inner](RequestOutput o) {
                              if (backend->in_flight) ++delivered_in_flight;
                              inner(std::move(o));
                            })
                    .is_ok());
  }
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(streams[i]->wait()) << i;
    EXPECT_EQ(streams[i]->ids, fake_reference(tokens(2 + 5 * i, 7 * i), 10 + i)) << i;
    EXPECT_EQ(streams[i]->reason, FinishReason::kLength);
    for (size_t k = 1; k < streams[i]->times.size(); ++k) EXPECT_GE(streams[i]->times[k], streams[i]->times[k - 1]);
  }
  EXPECT_GT(delivered_in_flight.load(), 0) << "no output was delivered while a step ran";
  engine.shutdown();
  for (auto& st : streams) EXPECT_EQ(st->num_after_final, 0);
  EXPECT_EQ(engine.stats().num_kv_blocks_free, engine.stats().num_kv_blocks_total);
}

// With a backend whose submit() runs the step itself (the CPU), there is
// nothing to overlap: a step's outputs go out before the next step runs.
TEST(AsyncEngine, SynchronousBackendDeliversBeforeTheNextStep) {
  FakeBackend* backend = nullptr;
  AsyncEngine engine(make_engine({}, &backend));
  Stream s;
  std::vector<int> steps_at_delivery;  // the engine thread's only
  auto inner = s.callback();
  ASSERT_TRUE(engine
                  .submit(gen("r", tokens(5, 1), 4),
                          [&](RequestOutput o) {
                            steps_at_delivery.push_back(backend->num_steps);
                            inner(std::move(o));
                          })
                  .is_ok());
  ASSERT_TRUE(s.wait());
  engine.shutdown();
  ASSERT_EQ(steps_at_delivery.size(), 4u);  // one output a step
  for (size_t i = 0; i < steps_at_delivery.size(); ++i) EXPECT_EQ(steps_at_delivery[i], static_cast<int>(i) + 1);
}

TEST(AsyncEngine, AbortWhileStepsOverlapEndsCleanly) {
  FakeBackend* backend = nullptr;
  auto core = make_engine({}, &backend);
  backend->async_submit = true;
  AsyncEngine engine(std::move(core));
  Stream s;
  std::promise<void> some;
  ASSERT_TRUE(engine.submit(gen("long", tokens(5, 1), 3000), signal_after(5, s, some)).is_ok());
  ASSERT_EQ(some.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  engine.abort("long");
  ASSERT_TRUE(s.wait());
  EXPECT_EQ(s.reason, FinishReason::kAbort);
  // Every token the stream saw is the reference's, in order: none lost before the abort.
  auto ref = fake_reference(tokens(5, 1), static_cast<int>(s.ids.size()));
  EXPECT_EQ(s.ids, ref);
  engine.shutdown();
  EXPECT_EQ(s.num_after_final, 0);
  EXPECT_EQ(engine.stats().num_kv_blocks_free, engine.stats().num_kv_blocks_total);
}

TEST(AsyncEngine, AbortMidStreamFreesBlocksAndEndsWithAbort) {
  FakeBackend* backend = nullptr;
  AsyncEngine engine(make_engine({}, &backend));
  Stream s;
  std::promise<void> some;
  ASSERT_TRUE(engine.submit(gen("long", tokens(5, 1), 3000), signal_after(5, s, some)).is_ok());
  ASSERT_EQ(some.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  engine.abort("long");
  ASSERT_TRUE(s.wait());
  EXPECT_EQ(s.reason, FinishReason::kAbort);
  EXPECT_LT(s.ids.size(), 3000u);
  engine.abort("long");     // no-op now
  engine.abort("unknown");  // no-op
  // The engine thread publishes stats after the step that ran the abort.
  ::baton::testing::wait_until([&] { return engine.stats().num_kv_blocks_free == engine.stats().num_kv_blocks_total; },
                               0.5, 5);
  EXPECT_EQ(engine.stats().num_kv_blocks_free, engine.stats().num_kv_blocks_total);
  EXPECT_EQ(engine.num_live_requests(), 0);
}

TEST(AsyncEngine, RejectsBadRequestsAtSubmission) {
  EngineOptions opts;
  opts.max_model_len = 32;
  AsyncEngine engine(make_engine(opts));
  EXPECT_EQ(engine.max_model_len(), 32);
  Stream s;
  Status st = engine.submit(gen("big", tokens(30, 1), 10), s.callback());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine.submit(gen("nocb", {1}, 1), nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(AsyncEngine, FullWaitingQueueIsResourceExhausted) {
  EngineOptions opts;
  opts.max_waiting_requests = 2;
  opts.max_num_seqs = 1;
  FakeBackend* backend = nullptr;
  auto core = make_engine(opts, &backend);
  AsyncEngine engine(std::move(core));
  std::vector<std::unique_ptr<Stream>> streams;
  int accepted = 0, exhausted = 0;
  for (int i = 0; i < 10; ++i) {
    streams.push_back(std::make_unique<Stream>());
    Status st = engine.submit(gen("q" + std::to_string(i), {1, 2}, 2000), streams.back()->callback());
    if (st.is_ok()) {
      ++accepted;
    } else {
      EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.to_string();
      ++exhausted;
    }
  }
  // One may be running (max_num_seqs 1), at most 2 wait.
  EXPECT_GE(exhausted, 7);
  EXPECT_LE(accepted, 3);
  engine.shutdown(AsyncEngine::ShutdownMode::kAbort);
  for (int i = 0; i < 10; ++i) {
    if (i < accepted) {
      EXPECT_TRUE(streams[i]->finished);
      EXPECT_EQ(streams[i]->reason, FinishReason::kAbort);
    }
  }
}

TEST(AsyncEngine, WaitingQueueIsBoundedByDefault) {
  EngineOptions opts;  // the default bound, as `baton serve` gets it without --max-waiting-requests
  ASSERT_GT(opts.max_waiting_requests, 0);
  opts.max_num_seqs = 1;
  AsyncEngine engine(make_engine(opts));
  std::vector<std::unique_ptr<Stream>> streams;
  int accepted = 0;
  Status refused;
  for (int i = 0; i < 4 * opts.max_waiting_requests && refused.is_ok(); ++i) {
    streams.push_back(std::make_unique<Stream>());
    Status st = engine.submit(gen("w" + std::to_string(i), {1, 2}, 2000), streams.back()->callback());
    if (st.is_ok()) ++accepted;
    else refused = st;
  }
  EXPECT_EQ(refused.code(), StatusCode::kResourceExhausted) << refused.to_string();
  EXPECT_NE(refused.message().find("--max-waiting-requests"), std::string::npos) << refused.message();
  EXPECT_GE(accepted, opts.max_waiting_requests);  // the queue, plus what ran and finished meanwhile
  engine.shutdown(AsyncEngine::ShutdownMode::kAbort);
}

TEST(AsyncEngine, ShutdownDrainFinishesLiveRequestsAndRefusesNewOnes) {
  AsyncEngine engine(make_engine({}));
  Stream a;
  ASSERT_TRUE(engine.submit(gen("a", tokens(4, 1), 30), a.callback()).is_ok());
  engine.shutdown(AsyncEngine::ShutdownMode::kDrain);
  EXPECT_TRUE(a.finished);
  EXPECT_EQ(a.reason, FinishReason::kLength);
  EXPECT_EQ(a.ids.size(), 30u);
  Stream b;
  EXPECT_EQ(engine.submit(gen("b", {1}, 1), b.callback()).code(), StatusCode::kUnavailable);
  engine.shutdown();  // idempotent
}

TEST(AsyncEngine, DuplicateLiveRequestIdIsRefused) {
  AsyncEngine engine(make_engine({}));
  Stream a, b;
  ASSERT_TRUE(engine.submit(gen("same", tokens(4, 1), 2000), a.callback()).is_ok());
  EXPECT_EQ(engine.submit(gen("same", tokens(4, 1), 5), b.callback()).code(), StatusCode::kInvalidArgument);
  engine.abort("same");
  ASSERT_TRUE(a.wait());
  EXPECT_EQ(a.reason, FinishReason::kAbort);
}

}  // namespace
}  // namespace baton

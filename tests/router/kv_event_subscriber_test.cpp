// The subscriber against a scripted instance: a stream that skips a batch
// number is dropped and a new one opened, whose snapshot rebuilds the state.
#include "router/kv_event_subscriber.h"

#include <gtest/gtest.h>

#include <atomic>

#include "http/http_server.h"
#include "support/wait.h"

namespace baton::router {
namespace {

using baton::testing::wait_until;

std::string event(const Json& j) { return j.dump(); }

TEST(KvEventSubscriber, AGapInTheStreamIsHealedByANewSnapshot) {
  std::atomic<int> num_streams{0};
  HttpServerOptions opts;
  opts.port = 0;
  opts.num_io_threads = 1;
  HttpServer server(opts, [&](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    if (req.path != "/v1/kv/events") return ex->reply(HttpResponse{404});
    ex->start_events();
    if (num_streams.fetch_add(1) == 0) {
      // Batch 1 is lost: batch 2 follows snapshot 0.
      ex->send_event(event({{"type", "snapshot"}, {"epoch", 7}, {"seq", 0}, {"block_size", 4}, {"hashes", {101}}}));
      ex->send_event(
          event({{"type", "events"}, {"epoch", 7}, {"seq", 2}, {"events", {{{"type", "stored"}, {"hashes", {103}}}}}}));
    } else {
      ex->send_event(
          event({{"type", "snapshot"}, {"epoch", 7}, {"seq", 2}, {"block_size", 4}, {"hashes", {101, 102, 103}}}));
      ex->send_event(event(
          {{"type", "events"}, {"epoch", 7}, {"seq", 3}, {"events", {{{"type", "removed"}, {"hashes", {101}}}}}}));
    }
    // Both streams stay open (as an instance's do).
  });
  ASSERT_TRUE(server.start().is_ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  InstancePool pool;
  pool.add(url, PoolRole::kReplica);
  KvIndex index;
  UpstreamClients clients(1);
  KvEventSubscriber subscriber(pool, clients, index, /*retry_s=*/0.05);
  subscriber.start();
  auto entry = [&] {
    auto e = index.entries();
    return e.empty() ? KvIndexEntry{} : e[0];
  };
  ASSERT_TRUE(wait_until([&] { return entry().num_batches == 1; }, 10.0));
  KvIndexEntry e = entry();
  EXPECT_TRUE(e.synced);
  EXPECT_EQ(e.num_snapshots, 2u);
  EXPECT_EQ(e.num_gaps, 1u);
  EXPECT_EQ(e.seq, 3u);
  EXPECT_EQ(e.num_blocks, 2u);
  EXPECT_EQ(num_streams.load(), 2);

  // An instance that leaves the pool loses its stream and state.
  pool.remove(url, PoolRole::kReplica);
  ASSERT_TRUE(wait_until([&] { return !entry().synced; }, 10.0));
  subscriber.stop();
  server.stop();
  clients.stop();
}

}  // namespace
}  // namespace baton::router

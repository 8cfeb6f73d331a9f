// GET /v1/kv/events on a real in-process instance: a snapshot first, then
// numbered batches whose stored hashes are the block hashes of what the
// engine computed (the hashes a router computes from the same token ids).
#include <gtest/gtest.h>

#include <thread>

#include "common/clock.h"
#include "kv/block_hash.h"
#include "pd/pd_cluster.h"
#include "server/http_test_client.h"

namespace baton {
namespace {

// The JSON payloads of the "data: " lines in raw (chunked) response bytes.
std::vector<Json> data_lines(const std::string& raw) {
  std::vector<Json> out;
  for (size_t p = raw.find("data: "); p != std::string::npos; p = raw.find("data: ", p + 1)) {
    size_t end = raw.find('\n', p);
    Json j = Json::parse(raw.substr(p + 6, end == std::string::npos ? std::string::npos : end - p - 6), nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

TEST(KvEventsEndpoint, StreamsASnapshotThenNumberedBatchesOfTheEnginesBlocks) {
  auto inst = pd_test::start_instance(pd_test::fixture_model("qwen3-tiny"), "agg");
  ASSERT_TRUE(inst);
  boost::asio::io_context ioc;
  auto sock = testing::connect_to(ioc, inst->port());
  const std::string req = testing::build_request("GET", "/v1/kv/events", "");
  boost::asio::write(sock, boost::asio::buffer(req));
  std::string raw = testing::read_events(sock, 1);
  ASSERT_NE(raw.find("text/event-stream"), std::string::npos) << raw;
  std::vector<Json> events = data_lines(raw);
  ASSERT_EQ(events.size(), 1u) << raw;
  const Json snapshot = events[0];
  EXPECT_EQ(snapshot["type"], "snapshot");
  EXPECT_EQ(snapshot["block_size"], 16);
  EXPECT_TRUE(snapshot["hashes"].empty());

  std::vector<int> prompt;
  for (int i = 0; i < 40; ++i) prompt.push_back(11 + i);
  ASSERT_EQ(pd_test::post_completion(inst->url(), pd_test::completion_body(prompt, 2, false)).http_status, 200);
  std::vector<BlockHash> want;
  std::vector<int32_t> ids(prompt.begin(), prompt.end());
  extend_block_hashes(want, ids, 16);  // two full blocks
  ASSERT_EQ(want.size(), 2u);

  // Batches follow the snapshot's number one by one until both blocks are stored.
  std::set<BlockHash> stored;
  uint64_t seq = snapshot["seq"].get<uint64_t>();
  for (int reads = 2; reads < 50 && stored.size() < 2; ++reads) {
    raw += testing::read_events(sock, 1);
    events = data_lines(raw);
    for (size_t i = 1; i < events.size(); ++i) {
      if (events[i]["seq"].get<uint64_t>() <= seq) continue;
      EXPECT_EQ(events[i]["seq"].get<uint64_t>(), seq + 1);
      EXPECT_EQ(events[i]["epoch"], snapshot["epoch"]);
      seq = events[i]["seq"].get<uint64_t>();
      for (const Json& e : events[i]["events"]) {
        if (e["type"] == "stored") {
          for (const Json& h : e["hashes"]) stored.insert(h.get<BlockHash>());
        }
      }
    }
  }
  EXPECT_EQ(stored, (std::set<BlockHash>(want.begin(), want.end())));
  EXPECT_EQ(testing::http_call(inst->port(), "POST", "/v1/kv/events", "{}").status, 405);

  // Shutdown ends the stream (a complete chunked response), so that the
  // server does not wait out its grace for this connection.
  std::thread stopper([&] { inst->stop(); });
  std::string rest;
  char buf[4096];
  boost::system::error_code ec;
  while (!ec) {
    size_t n = sock.read_some(boost::asio::buffer(buf), ec);
    rest.append(buf, n);
  }
  // The server half-closed after the last chunk and waits (up to 2 s) for
  // the client to close before it stops: a client that read the end closes.
  sock.close();
  Stopwatch stopping;
  stopper.join();
  EXPECT_LT(stopping.elapsed_s(), 1.5) << "stop() waited out the close of a connection whose client had gone";
  EXPECT_NE(rest.find("0\r\n\r\n"), std::string::npos) << rest;
}

}  // namespace
}  // namespace baton

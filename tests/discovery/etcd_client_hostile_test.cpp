// EtcdClient against an "etcd" that answers nonsense (an in-process HTTP
// server): every call fails with an error that says what was wrong, and a
// watch that receives what is no watch message ends with an error the
// watcher can re-read after. Before etcd_messages.h, each of these answers
// threw out of nlohmann::json into the keep-alive or watch thread.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "discovery/etcd_client.h"
#include "http/http_server.h"

namespace baton::discovery {
namespace {

void hostile_etcd(HttpRequest req, std::shared_ptr<HttpExchange> ex) {
  if (req.path == "/v3/watch") {  // a stream whose first message is no JSON object
    ex->start_events();
    ex->send_event(R"({"result":{"events":"x"}})");
    return;
  }
  HttpResponse r;
  if (req.path == "/v3/lease/grant") r.body = R"({"ID":{"x":1},"TTL":"10"})";
  else if (req.path == "/v3/lease/keepalive") r.body = R"({"result":[1]})";
  else if (req.path == "/v3/kv/range") r.body = R"({"header":{"revision":"12"},"kvs":[{"key":7}]})";
  else {
    r.status = 500;
    r.body = R"({"message":{"nested":true}})";
  }
  ex->reply(r);
}

TEST(EtcdClientHostileTest, NonsenseAnswersFailTheCallNotTheProcess) {
  HttpServerOptions options;
  options.port = 0;
  HttpServer server(options, hostile_etcd);
  ASSERT_TRUE(server.start().is_ok());
  auto etcd = EtcdClient::connect("etcd://127.0.0.1:" + std::to_string(server.port()), 5.0);
  ASSERT_TRUE(etcd.is_ok());

  auto lease = etcd->grant_lease(10);
  ASSERT_FALSE(lease.is_ok());
  EXPECT_NE(lease.status().message().find("'ID' is not an int64"), std::string::npos) << lease.status().message();
  auto ttl = etcd->keep_alive(1);
  ASSERT_FALSE(ttl.is_ok());
  EXPECT_NE(ttl.status().message().find("'result' is not an object"), std::string::npos) << ttl.status().message();
  int64_t revision = -1;
  auto kvs = etcd->get_prefix("/baton/", &revision);
  ASSERT_FALSE(kvs.is_ok());
  EXPECT_NE(kvs.status().message().find("'key' is not a string"), std::string::npos) << kvs.status().message();
  Status put = etcd->put("/baton/a", "{}");
  ASSERT_FALSE(put.is_ok());
  EXPECT_NE(put.message().find("500"), std::string::npos) << put.message();

  std::atomic<bool> stop{false};
  int events = 0;
  Status watch = etcd->watch_prefix(
      "/baton/", 1, [&](const WatchEvent&) { ++events; }, stop, 0.05);
  ASSERT_FALSE(watch.is_ok());
  EXPECT_NE(watch.message().find("watch message"), std::string::npos) << watch.message();
  EXPECT_EQ(events, 0);
  server.stop();
}

}  // namespace
}  // namespace baton::discovery

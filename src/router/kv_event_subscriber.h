// Keeps one GET /v1/kv/events stream open to every instance of the pool and
// feeds what arrives into a KvIndex. A stream that ends (the instance
// stopped or restarted), fails, or skips a batch number is closed, the
// instance's state dropped, and a new stream opened within retry_s: its
// first event is a fresh snapshot, so a restart or missed events heal by
// themselves. Instances that leave the pool lose their stream and state.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "http/http_client.h"
#include "router/instance_pool.h"
#include "router/kv_index.h"
#include "router/upstream_clients.h"

namespace baton::router {

class KvEventSubscriber {
 public:
  // `api_key`: the instances' --api-key, sent on every stream ("" = none).
  KvEventSubscriber(InstancePool& pool, UpstreamClients& clients, KvIndex& index, double retry_s = 0.5,
                    std::string api_key = {});
  ~KvEventSubscriber();  // stop()
  KvEventSubscriber(const KvEventSubscriber&) = delete;
  KvEventSubscriber& operator=(const KvEventSubscriber&) = delete;

  // Opens the streams now, then keeps them open from a thread.
  void start();
  // Closes every stream and joins the thread. Idempotent.
  void stop();
  // One pass: opens a stream to each instance without one, closes those of
  // instances gone from the pool.
  void sync_streams();

 private:
  struct Stream;
  void open(const std::string& url);
  void loop();

  InstancePool& pool_;
  UpstreamClients& clients_;
  KvIndex& index_;
  const double retry_s_;
  const std::string api_key_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::string, std::shared_ptr<Stream>> streams_;  // by URL, under mu_
  std::thread thread_;
};

}  // namespace baton::router

// GET /v1/kv/events: the instance's KV event stream (kv/kv_event_publisher.h)
// as server-sent events. The first event is a snapshot, then one event per
// published batch, numbered; the router subscribes (router/kv_event_subscriber.h).
// Every stream is unsubscribed when it ends or when this object goes, so
// that the engine thread never posts to a server that is gone.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "http/http_exchange.h"
#include "kv/kv_event_publisher.h"

namespace baton {

class KvEventStreams {
 public:
  explicit KvEventStreams(std::shared_ptr<KvEventPublisher> publisher) : publisher_(std::move(publisher)) {}
  ~KvEventStreams();  // unsubscribes every stream
  KvEventStreams(const KvEventStreams&) = delete;
  KvEventStreams& operator=(const KvEventStreams&) = delete;

  // On the exchange's executor: starts the event stream and keeps it open
  // until the client leaves or the server stops.
  void serve(const std::shared_ptr<HttpExchange>& exchange);
  int num_streams() const;
  // Shutdown: ends every stream (each client sees a complete response and
  // its connection goes idle, so the server can close it at once).
  void end_all();

 private:
  void end(uint64_t id);

  std::shared_ptr<KvEventPublisher> publisher_;
  mutable std::mutex mu_;
  std::map<uint64_t, std::weak_ptr<HttpExchange>> streams_;  // by subscription id
};

}  // namespace baton

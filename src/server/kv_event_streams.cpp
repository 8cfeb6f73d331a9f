#include "server/kv_event_streams.h"

#include <boost/asio/post.hpp>

namespace baton {

KvEventStreams::~KvEventStreams() { end_all(); }

void KvEventStreams::end_all() {
  std::map<uint64_t, std::weak_ptr<HttpExchange>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams.swap(streams_);
  }
  for (auto& [id, weak] : streams) {
    // After unsubscribe() returns, the publisher never calls that sink again.
    publisher_->unsubscribe(id);
    if (auto ex = weak.lock()) {
      boost::asio::post(ex->executor(), [ex] {
        if (!ex->disconnected()) ex->end_events();
      });
    }
  }
}

void KvEventStreams::serve(const std::shared_ptr<HttpExchange>& exchange) {
  exchange->start_events();
  std::weak_ptr<HttpExchange> weak = exchange;
  auto executor = exchange->executor();
  // Batches are posted to the exchange's executor in publishing order, and
  // after this handler (which sends the snapshot first) returns.
  auto [id, snapshot] = publisher_->subscribe([weak, executor](std::shared_ptr<const std::string> batch) {
    boost::asio::post(executor, [weak, batch = std::move(batch)] {
      if (auto ex = weak.lock(); ex && !ex->disconnected()) ex->send_event(*batch);
    });
  });
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.emplace(id, exchange);
  }
  exchange->send_event(snapshot);
  exchange->set_disconnect_handler([this, id = id] { end(id); });
}

void KvEventStreams::end(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (streams_.erase(id) == 0) return;
  }
  publisher_->unsubscribe(id);
}

int KvEventStreams::num_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(streams_.size());
}

}  // namespace baton

#include "router/kv_event_subscriber.h"

#include <atomic>
#include <chrono>
#include <set>

#include "common/log.h"
#include "http/sse_parser.h"

namespace baton::router {

struct KvEventSubscriber::Stream {
  http::StreamHandle handle;
  std::atomic<bool> done{false};
  std::unique_ptr<http::SseParser> parser;  // used on the client's executor only
};

KvEventSubscriber::KvEventSubscriber(InstancePool& pool, UpstreamClients& clients, KvIndex& index, double retry_s,
                                     std::string api_key)
    : pool_(pool), clients_(clients), index_(index), retry_s_(retry_s), api_key_(std::move(api_key)) {}

KvEventSubscriber::~KvEventSubscriber() { stop(); }

void KvEventSubscriber::start() {
  sync_streams();
  thread_ = std::thread([this] { loop(); });
}

void KvEventSubscriber::stop() {
  std::map<std::string, std::shared_ptr<Stream>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    streams.swap(streams_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& [url, s] : streams) s->handle.cancel();
}

void KvEventSubscriber::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::duration<double>(retry_s_), [&] { return stop_; });
    if (stop_) break;
    lock.unlock();
    sync_streams();
    lock.lock();
  }
}

void KvEventSubscriber::sync_streams() {
  std::set<std::string> urls;
  for (const auto& inst : pool_.all()) urls.insert(inst->url);
  std::vector<std::string> to_open;
  std::vector<std::shared_ptr<Stream>> to_close;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    for (auto it = streams_.begin(); it != streams_.end();) {
      if (!urls.count(it->first) || it->second->done.load()) {
        if (!urls.count(it->first)) index_.forget(it->first);
        to_close.push_back(it->second);
        it = streams_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& url : urls) {
      if (!streams_.count(url)) to_open.push_back(url);
    }
  }
  for (auto& s : to_close) s->handle.cancel();
  for (const auto& url : to_open) open(url);
}

void KvEventSubscriber::open(const std::string& url) {
  auto client = clients_.get(url);
  if (!client.is_ok()) {
    BATON_LOG_WARN("KV events of {}: {}", url, client.status().message());
    return;
  }
  auto stream = std::make_shared<Stream>();
  KvIndex* index = &index_;
  std::weak_ptr<Stream> weak = stream;
  stream->parser = std::make_unique<http::SseParser>([index, url, weak](const http::SseEvent& e) {
    auto s = weak.lock();
    if (!s || s->done.load()) return;
    if (Status st = index->apply(url, e.data); !st.is_ok()) {
      // A gap or a bad event: drop this stream; the next one starts from a snapshot.
      // (The state is dropped already; sync_streams closes this stream.)
      BATON_LOG_WARN("KV events of {}: {}; resubscribing", url, st.message());
      s->done.store(true);
    }
  });
  http::Request req;
  req.method = "GET";
  req.target = "/v1/kv/events";
  req.timeout_s = 10.0 * 365 * 86400;  // the stream lasts as long as the instance
  req.first_byte_timeout_s = 10.0;
  req.idle_timeout_s = 20.0;  // the instance sends a heartbeat every 5 s
  if (!api_key_.empty()) req.headers.push_back({"Authorization", "Bearer " + api_key_});
  http::StreamHandlers h;
  h.on_headers = [weak, url](int status, const std::vector<http::Header>&) {
    if (status == 200) return;
    BATON_LOG_WARN("KV events of {}: the instance answered {}", url, status);
    if (auto s = weak.lock()) s->done.store(true);
  };
  h.on_data = [weak](std::string_view bytes) {
    auto s = weak.lock();
    if (s && !s->done.load()) s->parser->feed(bytes);
  };
  h.on_done = [weak, index, url](const Status&) {
    // A stream that ended by itself (the instance went away): what it said
    // is stale. One this side dropped has its state dropped already, and
    // its successor's must stay.
    auto s = weak.lock();
    if (s && !s->done.exchange(true)) index->forget(url);
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || streams_.count(url)) return;
    streams_[url] = stream;
    // Under mu_: sync_streams() and stop() cancel the handle only after this assignment.
    stream->handle = (*client)->stream(std::move(req), std::move(h));
  }
}

}  // namespace baton::router

// A small etcd v3 client over its JSON gateway (HTTP/1.1: /v3/kv/*,
// /v3/lease/*, /v3/watch), enough for service discovery: leases with
// keep-alive, puts under a lease, prefix reads, and prefix watches.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "discovery/etcd_messages.h"
#include "http/url.h"

namespace baton::discovery {

class EtcdClient {
 public:
  // `endpoint`: etcd://HOST:PORT or http://HOST:PORT.
  static Result<EtcdClient> connect(const std::string& endpoint, double timeout_s = 5.0);

  Result<int64_t> grant_lease(int ttl_s);
  // Returns the remaining TTL; kNotFound when the lease has expired.
  Result<int64_t> keep_alive(int64_t lease_id);
  Status revoke_lease(int64_t lease_id);
  Status put(const std::string& key, const std::string& value, int64_t lease_id = 0);
  Status remove(const std::string& key);
  // Every key starting with `prefix`, and the store revision of the read.
  Result<std::vector<KeyValue>> get_prefix(const std::string& prefix, int64_t* revision = nullptr);
  // Streams events under `prefix` from `start_revision` until `stop` turns
  // true (checked between events and at least every `poll_s`), the
  // connection breaks, or etcd sends what is no watch message (returns the
  // error; the caller reads the keys anew).
  Status watch_prefix(const std::string& prefix, int64_t start_revision,
                      const std::function<void(const WatchEvent&)>& on_event, const std::atomic<bool>& stop,
                      double poll_s = 1.0);

  const http::Url& url() const { return url_; }

 private:
  EtcdClient(http::Url url, double timeout_s) : url_(std::move(url)), timeout_s_(timeout_s) {}
  Result<std::string> call(const std::string& path, const std::string& body);

  http::Url url_;
  double timeout_s_;
};

// The end key of a prefix range (the prefix with its last byte incremented).
std::string prefix_range_end(const std::string& prefix);

}  // namespace baton::discovery

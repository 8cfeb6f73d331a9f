#include "discovery/etcd_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/json.h"
#include "http/http_client.h"

namespace baton::discovery {

std::string prefix_range_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<uint8_t>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // whole keyspace
}

Result<EtcdClient> EtcdClient::connect(const std::string& endpoint, double timeout_s) {
  std::string url = endpoint;
  if (url.rfind("etcd://", 0) == 0) url = "http://" + url.substr(7);
  BATON_ASSIGN_OR_RETURN(http::Url parsed, http::parse_url(url));
  return EtcdClient(parsed, timeout_s);
}

Result<std::string> EtcdClient::call(const std::string& path, const std::string& body) {
  http::Url u = url_;
  u.target = path;
  http::Request req;
  req.method = "POST";
  req.body = body;
  req.timeout_s = timeout_s_;
  auto r = http::fetch(u, std::move(req));
  if (!r.is_ok()) return r.status().with_context("etcd " + url_.host_port() + path);
  if (r->status != 200) {
    const std::string msg = parse_error_answer(r->body);
    if (msg.find("not found") != std::string::npos) return not_found("etcd {}: {}", path, msg);
    return unavailable("etcd {} answered {}: {}", path, r->status, msg);
  }
  return std::move(r->body);
}

Result<int64_t> EtcdClient::grant_lease(int ttl_s) {
  BATON_ASSIGN_OR_RETURN(std::string body, call("/v3/lease/grant", Json{{"TTL", ttl_s}}.dump()));
  return parse_lease_grant(body);
}

Result<int64_t> EtcdClient::keep_alive(int64_t lease_id) {
  BATON_ASSIGN_OR_RETURN(std::string body, call("/v3/lease/keepalive", Json{{"ID", lease_id}}.dump()));
  BATON_ASSIGN_OR_RETURN(int64_t ttl, parse_keep_alive(body));
  if (ttl <= 0) return not_found("etcd lease {} has expired", lease_id);
  return ttl;
}

Status EtcdClient::revoke_lease(int64_t lease_id) {
  auto r = call("/v3/lease/revoke", Json{{"ID", lease_id}}.dump());
  return r.is_ok() ? Status::ok() : r.status();
}

Status EtcdClient::put(const std::string& key, const std::string& value, int64_t lease_id) {
  Json req = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease_id != 0) req["lease"] = lease_id;
  auto r = call("/v3/kv/put", req.dump());
  return r.is_ok() ? Status::ok() : r.status();
}

Status EtcdClient::remove(const std::string& key) {
  auto r = call("/v3/kv/deleterange", Json{{"key", base64_encode(key)}}.dump());
  return r.is_ok() ? Status::ok() : r.status();
}

Result<std::vector<KeyValue>> EtcdClient::get_prefix(const std::string& prefix, int64_t* revision) {
  Json req = {{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_range_end(prefix))}};
  BATON_ASSIGN_OR_RETURN(std::string body, call("/v3/kv/range", req.dump()));
  BATON_ASSIGN_OR_RETURN(RangeAnswer answer, parse_range(body));
  if (revision) *revision = answer.revision;
  return std::move(answer.kvs);
}

Status EtcdClient::watch_prefix(const std::string& prefix, int64_t start_revision,
                                const std::function<void(const WatchEvent&)>& on_event, const std::atomic<bool>& stop,
                                double poll_s) {
  namespace asio = boost::asio;
  asio::io_context io;
  BATON_ASSIGN_OR_RETURN(auto client, http::HttpClient::create(io.get_executor(), url_));
  Json create = {{"create_request",
                  {{"key", base64_encode(prefix)},
                   {"range_end", base64_encode(prefix_range_end(prefix))},
                   {"start_revision", start_revision}}}};
  http::Request req;
  req.target = "/v3/watch";
  req.body = create.dump();
  req.timeout_s = 1e9;
  std::string pending;
  Status result = Status::ok();
  asio::steady_timer timer(io);
  http::StreamHandlers h;
  h.on_headers = [&](int status, const std::vector<http::Header>&) {
    if (status != 200) result = unavailable("etcd watch answered {}", status);
  };
  h.on_data = [&](std::string_view bytes) {
    if (!result.is_ok()) return;  // a bad message or answer ended the watch
    pending.append(bytes);
    // The gateway sends one JSON object per message, newline-separated.
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line.empty()) continue;
      auto events = parse_watch_message(line);
      if (!events.is_ok()) {  // the stream is ended (the timer below cancels it) and the caller re-reads
        if (result.is_ok()) result = events.status();
        pending.clear();
        return;
      }
      for (const WatchEvent& we : *events) on_event(we);
    }
  };
  h.on_done = [&](const Status& st) {
    if (result.is_ok() && !st.is_ok() && !stop.load()) result = st;
    if (result.is_ok() && !stop.load()) result = unavailable("etcd watch stream ended");
    timer.cancel();
  };
  auto handle = client->stream(std::move(req), std::move(h));
  // Check `stop` periodically; cancel the stream when it turns true.
  std::function<void()> arm = [&] {
    timer.expires_after(std::chrono::milliseconds(static_cast<int64_t>(poll_s * 1000)));
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if (stop.load() || !result.is_ok()) {
        handle.cancel();
        return;
      }
      arm();
    });
  };
  arm();
  io.run();  // until the stream ends (on_done cancels the timer)
  return result;
}

}  // namespace baton::discovery

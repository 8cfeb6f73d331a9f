#include "discovery/etcd_client.h"

#include <cstring>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/json.h"
#include "http/http_client.h"

namespace baton::discovery {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int64_t to_int64(const Json& j) {
  if (j.is_string()) return std::stoll(j.get<std::string>());  // the gateway sends int64 as strings
  if (j.is_number()) return j.get<int64_t>();
  return 0;
}

Result<KeyValue> parse_kv(const Json& j) {
  KeyValue kv;
  BATON_ASSIGN_OR_RETURN(kv.key, base64_decode(j.value("key", "")));
  BATON_ASSIGN_OR_RETURN(kv.value, base64_decode(j.value("value", "")));
  if (j.contains("mod_revision")) kv.mod_revision = to_int64(j["mod_revision"]);
  return kv;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= uint8_t(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += (i + 1 < bytes.size()) ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    const char* p = std::strchr(kAlphabet, c);
    if (c == '\0' || p == nullptr) return invalid_argument("invalid base64 character '{}'", c);
    acc = (acc << 6) | static_cast<uint32_t>(p - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

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
    auto j = parse_json(r->body, "etcd error");
    std::string msg = j.is_ok() ? j->value("message", r->body) : r->body;
    if (msg.find("not found") != std::string::npos) return not_found("etcd {}: {}", path, msg);
    return unavailable("etcd {} answered {}: {}", path, r->status, msg);
  }
  return std::move(r->body);
}

Result<int64_t> EtcdClient::grant_lease(int ttl_s) {
  BATON_ASSIGN_OR_RETURN(std::string body, call("/v3/lease/grant", Json{{"TTL", ttl_s}}.dump()));
  BATON_ASSIGN_OR_RETURN(Json j, parse_json(body, "etcd lease grant"));
  int64_t id = to_int64(j.value("ID", Json()));
  if (id == 0) return unavailable("etcd granted no lease: {}", body);
  return id;
}

Result<int64_t> EtcdClient::keep_alive(int64_t lease_id) {
  BATON_ASSIGN_OR_RETURN(std::string body, call("/v3/lease/keepalive", Json{{"ID", lease_id}}.dump()));
  BATON_ASSIGN_OR_RETURN(Json j, parse_json(body, "etcd keepalive"));
  const Json& result = j.contains("result") ? j["result"] : j;
  int64_t ttl = to_int64(result.value("TTL", Json(0)));
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
  BATON_ASSIGN_OR_RETURN(Json j, parse_json(body, "etcd range"));
  if (revision) *revision = to_int64(j["header"].value("revision", Json(0)));
  std::vector<KeyValue> out;
  for (const auto& kv : j.value("kvs", Json::array())) {
    BATON_ASSIGN_OR_RETURN(KeyValue parsed, parse_kv(kv));
    out.push_back(std::move(parsed));
  }
  return out;
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
    pending.append(bytes);
    // The gateway sends one JSON object per message, newline-separated.
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line.empty()) continue;
      auto j = parse_json(line, "etcd watch message");
      if (!j.is_ok()) continue;
      const Json& res = j->contains("result") ? (*j)["result"] : *j;
      for (const auto& ev : res.value("events", Json::array())) {
        WatchEvent we;
        we.type = ev.value("type", "PUT") == "DELETE" ? WatchEvent::Type::kDelete : WatchEvent::Type::kPut;
        auto kv = parse_kv(ev["kv"]);
        if (!kv.is_ok()) continue;
        we.kv = std::move(kv).value();
        on_event(we);
      }
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
      if (stop.load()) {
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

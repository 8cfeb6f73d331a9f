#include "discovery/etcd_messages.h"

#include <charconv>
#include <cstring>
#include <limits>

#include "common/json.h"

namespace baton::discovery {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// An int64 field of `obj` (the gateway writes int64s as strings, as proto3's
// JSON mapping does, or as numbers); `absent` when it is not there.
Result<int64_t> int64_field(const Json& obj, const char* key, int64_t absent, std::string_view what) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absent;
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return invalid_argument("etcd {}: '{}' is above int64's range", what, key);
    return it->get<int64_t>();
  }
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return v;
  }
  return invalid_argument("etcd {}: '{}' is not an int64", what, key);
}

// An object field of `obj`; null when absent. An error when it is there and no object.
Result<const Json*> object_field(const Json& obj, const char* key, std::string_view what) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return static_cast<const Json*>(nullptr);
  if (!it->is_object()) return invalid_argument("etcd {}: '{}' is not an object", what, key);
  return &*it;
}

Result<Json> parse_object(std::string_view body, std::string_view what) {
  BATON_ASSIGN_OR_RETURN(Json j, parse_json(body, what));
  if (!j.is_object()) return invalid_argument("etcd {}: the answer is not a JSON object", what);
  return j;
}

// A base64 string field (absent: empty, as the gateway leaves out empty values).
Result<std::string> base64_field(const Json& obj, const char* key, std::string_view what) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return invalid_argument("etcd {}: '{}' is not a string", what, key);
  auto decoded = base64_decode(it->get_ref<const std::string&>());
  if (!decoded.is_ok()) return decoded.status().with_context(fmt::format("etcd {}: '{}'", what, key));
  return decoded;
}

Result<KeyValue> parse_kv(const Json& j, std::string_view what) {
  if (!j.is_object()) return invalid_argument("etcd {}: a key-value is not an object", what);
  KeyValue kv;
  BATON_ASSIGN_OR_RETURN(kv.key, base64_field(j, "key", what));
  BATON_ASSIGN_OR_RETURN(kv.value, base64_field(j, "value", what));
  BATON_ASSIGN_OR_RETURN(kv.mod_revision, int64_field(j, "mod_revision", 0, what));
  return kv;
}

// An etcd error answer ({"error": ..., "message": ...} or {"error": {...}}): its text.
std::string error_text(const Json& j) {
  for (const char* key : {"message", "error"}) {
    const auto it = j.find(key);
    if (it == j.end()) continue;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object()) {
      const auto m = it->find("message");
      if (m != it->end() && m->is_string()) return m->get<std::string>();
    }
    return it->dump().substr(0, 200);
  }
  return "";
}

}  // namespace

Result<int64_t> parse_lease_grant(std::string_view body) {
  BATON_ASSIGN_OR_RETURN(Json j, parse_object(body, "lease grant"));
  BATON_ASSIGN_OR_RETURN(int64_t id, int64_field(j, "ID", 0, "lease grant"));
  if (id == 0) return unavailable("etcd granted no lease: {}", std::string(body.substr(0, 200)));
  return id;
}

Result<int64_t> parse_keep_alive(std::string_view body) {
  BATON_ASSIGN_OR_RETURN(Json j, parse_object(body, "keepalive"));
  BATON_ASSIGN_OR_RETURN(const Json* result, object_field(j, "result", "keepalive"));
  return int64_field(result != nullptr ? *result : j, "TTL", 0, "keepalive");
}

Result<RangeAnswer> parse_range(std::string_view body) {
  BATON_ASSIGN_OR_RETURN(Json j, parse_object(body, "range"));
  RangeAnswer out;
  BATON_ASSIGN_OR_RETURN(const Json* header, object_field(j, "header", "range"));
  if (header != nullptr) {
    BATON_ASSIGN_OR_RETURN(out.revision, int64_field(*header, "revision", 0, "range header"));
  }
  const auto kvs = j.find("kvs");
  if (kvs == j.end() || kvs->is_null()) return out;
  if (!kvs->is_array()) return invalid_argument("etcd range: 'kvs' is not an array");
  for (const Json& kv : *kvs) {
    BATON_ASSIGN_OR_RETURN(KeyValue parsed, parse_kv(kv, "range"));
    out.kvs.push_back(std::move(parsed));
  }
  return out;
}

Result<std::vector<WatchEvent>> parse_watch_message(std::string_view line) {
  BATON_ASSIGN_OR_RETURN(Json j, parse_object(line, "watch message"));
  if (j.contains("error")) return unavailable("etcd watch error: {}", error_text(j));
  BATON_ASSIGN_OR_RETURN(const Json* result, object_field(j, "result", "watch message"));
  const Json& res = result != nullptr ? *result : j;
  std::vector<WatchEvent> out;
  const auto events = res.find("events");
  if (events == res.end() || events->is_null()) return out;
  if (!events->is_array()) return invalid_argument("etcd watch message: 'events' is not an array");
  for (const Json& ev : *events) {
    if (!ev.is_object()) return invalid_argument("etcd watch message: an event is not an object");
    WatchEvent we;
    const auto type = ev.find("type");
    if (type != ev.end() && !type->is_null()) {
      if (!type->is_string()) return invalid_argument("etcd watch message: an event's 'type' is not a string");
      const std::string& t = type->get_ref<const std::string&>();
      if (t == "DELETE") we.type = WatchEvent::Type::kDelete;
      else if (t != "PUT") return invalid_argument("etcd watch message: unknown event type '{}'", t.substr(0, 40));
    }
    const auto kv = ev.find("kv");
    if (kv == ev.end()) return invalid_argument("etcd watch message: an event has no 'kv'");
    BATON_ASSIGN_OR_RETURN(we.kv, parse_kv(*kv, "watch message"));
    out.push_back(std::move(we));
  }
  return out;
}

std::string parse_error_answer(std::string_view body) {
  auto j = parse_json(body, "etcd error");
  std::string text = j.is_ok() && j->is_object() ? error_text(*j) : std::string();
  if (text.empty()) text = std::string(body);
  if (text.size() > 200) text.resize(200);
  return text;
}

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

}  // namespace baton::discovery

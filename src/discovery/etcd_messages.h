// What etcd's v3 JSON gateway answers, read without exceptions. etcd is a
// peer: an answer with a field of the wrong type, a number that is no int64
// or a part missing is an error that names it, so a broken or hostile etcd
// (or anyone on the gateway's unauthenticated port) fails one call instead of
// ending the process that asked (its keep-alive and watch threads).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace baton::discovery {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t mod_revision = 0;
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;
};

// /v3/kv/range: the keys and the store revision of the read.
struct RangeAnswer {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;
};

// /v3/lease/grant: the lease's id (an error when it has none).
Result<int64_t> parse_lease_grant(std::string_view body);
// /v3/lease/keepalive: the lease's remaining TTL in seconds; 0 when the
// answer has none (the lease has expired).
Result<int64_t> parse_keep_alive(std::string_view body);
Result<RangeAnswer> parse_range(std::string_view body);
// One message of a /v3/watch stream (a line of JSON): its events, none for a
// message that only confirms the watch; an error message is an error.
Result<std::vector<WatchEvent>> parse_watch_message(std::string_view line);
// What an error answer (an HTTP status other than 200) says: its message,
// else the body itself, at most 200 bytes of it.
std::string parse_error_answer(std::string_view body);

// The gateway's encoding of keys and values.
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

}  // namespace baton::discovery

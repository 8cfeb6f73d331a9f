#include "kv_transfer/transfer_params.h"

#include <limits>

#include "kv_transfer/kv_agent.h"

namespace baton {

namespace {

constexpr const char* kWhat = "kv_transfer_params";

Result<std::string> get_string(const Json& p, const char* key, bool required) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) {
    if (required) return invalid_argument("{} has no '{}'", kWhat, key);
    return std::string();
  }
  if (!it->is_string()) return invalid_argument("{} '{}' must be a string, not {}", kWhat, key, it->type_name());
  return it->get<std::string>();
}

// An integer field within [lo, hi] (floats, booleans and strings refused).
Result<int64_t> get_int(const Json& p, const char* key, int64_t lo, int64_t hi) {
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return invalid_argument("{} has no '{}'", kWhat, key);
  if (!it->is_number_integer())
    return invalid_argument("{} '{}' must be an integer, not {}", kWhat, key, it->type_name());
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return out_of_range("{} '{}' is out of range", kWhat, key);
  }
  const int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) return out_of_range("{} '{}' is {}, outside [{}, {}]", kWhat, key, v, lo, hi);
  return v;
}

}  // namespace

Result<TransferParams> TransferParams::parse(const Json& p) {
  if (!p.is_object()) return invalid_argument("{} must be an object", kWhat);
  constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
  constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
  TransferParams t;
  BATON_ASSIGN_OR_RETURN(t.engine_id, get_string(p, "remote_engine_id", true));
  BATON_ASSIGN_OR_RETURN(t.request_id, get_string(p, "remote_request_id", true));
  BATON_ASSIGN_OR_RETURN(t.host, get_string(p, "remote_host", true));
  BATON_ASSIGN_OR_RETURN(const int64_t port, get_int(p, "remote_port", 1, 65535));
  t.port = static_cast<int>(port);
  BATON_ASSIGN_OR_RETURN(const int64_t num_tokens, get_int(p, "remote_num_tokens", 1, kMaxInt));
  t.num_tokens = static_cast<int>(num_tokens);
  BATON_ASSIGN_OR_RETURN(const int64_t block_size, get_int(p, "remote_block_size", 1, kMaxInt));
  t.block_size = static_cast<int>(block_size);
  BATON_ASSIGN_OR_RETURN(t.lease_expires_ms, get_int(p, "lease_expires_ms", 0, kMaxInt64));
  BATON_ASSIGN_OR_RETURN(t.lease_ms, get_int(p, "lease_ms", 1, kMaxInt64));
  BATON_ASSIGN_OR_RETURN(t.transport, get_string(p, "kv_transport", false));
  BATON_ASSIGN_OR_RETURN(t.lease_token, get_string(p, "lease_token", true));
  BATON_ASSIGN_OR_RETURN(t.signature, get_string(p, "signature", false));
  if (auto stream = p.find("stream_kv"); stream != p.end() && !stream->is_null()) {
    if (!stream->is_boolean())
      return invalid_argument("{} 'stream_kv' must be a boolean, not {}", kWhat, stream->type_name());
    t.stream_kv = stream->get<bool>();
  }
  auto ids = p.find("remote_block_ids");
  if (ids == p.end() || !ids->is_array()) return invalid_argument("{} has no 'remote_block_ids' array", kWhat);
  t.block_ids.reserve(ids->size());
  for (const Json& id : *ids) {
    const bool in_range = id.is_number_integer() &&
                          (id.is_number_unsigned() ? id.get<uint64_t>() <= static_cast<uint64_t>(kMaxInt)
                                                   : id.get<int64_t>() >= 0 && id.get<int64_t>() <= kMaxInt);
    if (!in_range) {
      return invalid_argument("{} 'remote_block_ids' holds {}, not a block id (an integer in [0, {}])", kWhat,
                              dump_json(id), kMaxInt);
    }
    t.block_ids.push_back(id.get<int64_t>());
  }
  return t;
}

Json TransferParams::to_json() const {
  Json j = {
      {"do_remote_prefill", true},
      {"do_remote_decode", false},
      {"remote_engine_id", engine_id},
      {"remote_request_id", request_id},
      {"remote_block_ids", block_ids},
      {"remote_host", host},
      {"remote_port", port},
      {"remote_num_tokens", num_tokens},
      {"remote_block_size", block_size},
      {"lease_expires_ms", lease_expires_ms},
      {"lease_ms", lease_ms},
      {"kv_transport", transport},
      {"lease_token", lease_token},
  };
  if (stream_kv) j["stream_kv"] = true;
  if (!signature.empty()) j["signature"] = signature;
  return j;
}

std::string TransferParams::signing_message() const {
  // A JSON array: every field in a fixed order, strings quoted, so that no
  // two different parameter sets serialise alike.
  Json fields = Json::array({"baton-kv-params-v1", engine_id, request_id, block_ids, host, port, num_tokens, block_size,
                             lease_expires_ms, lease_ms, transport, lease_token});
  if (stream_kv) fields.push_back("stream_kv");
  return dump_json(fields);
}

Status TransferParams::verify(const KvSecret* secret) const {
  if (secret != nullptr) {
    if (signature.empty()) {
      return invalid_argument(
          "{} are not signed, and this instance has a KV secret: only params a prefill "
          "instance with the same secret returned are accepted",
          kWhat);
    }
    if (!secret->verify(signing_message(), signature)) {
      return invalid_argument(
          "{} signature does not match: they were changed after the prefill instance "
          "signed them, or it has another KV secret",
          kWhat);
    }
    return Status::ok();
  }
  if (!is_loopback_host(host)) {
    return invalid_argument(
        "{} name KV agent host '{}', which is not loopback; without a KV secret this "
        "instance reads KV only from loopback (give both instances --kv-secret-file)",
        kWhat, host);
  }
  return Status::ok();
}

}  // namespace baton

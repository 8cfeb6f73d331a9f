#include "kv_transfer/wire.h"

#include <cstring>

namespace baton {

namespace {
constexpr size_t kHeaderBytes = 24;

void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
template <typename T>
T get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
}  // namespace

Status send_frame(Connection& conn, MsgType type, const Json& json, uint64_t payload_bytes,
                  const ReadContext& ctx) {
  const std::string body = json.dump();
  uint8_t header[kHeaderBytes] = {};
  put_u32(header, kWireMagic);
  put_u16(header + 4, kWireVersion);
  put_u16(header + 6, static_cast<uint16_t>(type));
  put_u32(header + 8, static_cast<uint32_t>(body.size()));
  put_u32(header + 12, 0);
  put_u64(header + 16, payload_bytes);
  return conn.write_all({boost::asio::buffer(header, kHeaderBytes), boost::asio::buffer(body)},
                        ctx);
}

Result<Frame> recv_frame(Connection& conn, const ReadContext& ctx) {
  uint8_t header[kHeaderBytes];
  BATON_RETURN_IF_ERROR(conn.read_all(header, kHeaderBytes, ctx));
  if (get<uint32_t>(header) != kWireMagic) {
    return data_loss("KV peer {}: bad frame magic {:08x} (not a baton KV agent?)",
                     conn.peer_name(), get<uint32_t>(header));
  }
  if (get<uint16_t>(header + 4) != kWireVersion) {
    return failed_precondition("KV peer {}: wire version {} (this build speaks {})",
                               conn.peer_name(), get<uint16_t>(header + 4), kWireVersion);
  }
  Frame frame;
  const uint16_t type = get<uint16_t>(header + 6);
  if (type < 1 || type > 7) return data_loss("KV peer {}: unknown message type {}", conn.peer_name(), type);
  frame.type = static_cast<MsgType>(type);
  const uint32_t json_bytes = get<uint32_t>(header + 8);
  frame.payload_bytes = get<uint64_t>(header + 16);
  if (json_bytes > kMaxFrameJsonBytes) {
    return data_loss("KV peer {}: frame JSON of {} bytes exceeds the limit", conn.peer_name(),
                     json_bytes);
  }
  std::string body(json_bytes, '\0');
  if (json_bytes > 0) BATON_RETURN_IF_ERROR(conn.read_all(body.data(), body.size(), ctx));
  BATON_ASSIGN_OR_RETURN(frame.json, parse_json(body, "KV agent frame"));
  return frame;
}

Status send_error(Connection& conn, const Status& status, const ReadContext& ctx) {
  return send_frame(conn, MsgType::kError,
                    Json{{"code", static_cast<int>(status.code())}, {"message", status.message()}},
                    0, ctx);
}

Status status_from_error_frame(const Frame& frame, const std::string& peer) {
  const int code = frame.json.value("code", static_cast<int>(StatusCode::kInternal));
  const std::string message = frame.json.value("message", std::string("(no message)"));
  StatusCode sc = StatusCode::kInternal;
  if (code > 0 && code <= static_cast<int>(StatusCode::kInternal)) sc = static_cast<StatusCode>(code);
  return Status(sc, "KV peer " + peer + ": " + message);
}

}  // namespace baton

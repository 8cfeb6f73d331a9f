// The KV agent's wire protocol. Every message is one frame:
//
//   header (24 bytes, little endian):
//     u32 magic 'BKVT' | u16 version | u16 type | u32 json_bytes | u32 reserved | u64 payload_bytes
//   json   (json_bytes of UTF-8 JSON)
//   payload (payload_bytes of raw block data, streamed; only kBlocks)
//
// Requests and replies:
//   kGetDescriptor {engine_id}                         -> kDescriptor {descriptor}
//   kReadBlocks {runs: [[remote_first, n], ...], checksums: bool}
//                                                      -> kBlocks {checksums?} + payload
//   kDone {engine_id, request_id, renew?}              -> kAck {}  (renew: extend the lease)
//   any request                                        -> kError {code, message}
#pragma once

#include <cstdint>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "kv_transfer/connection.h"

namespace baton {

inline constexpr uint32_t kWireMagic = 0x54564B42;  // "BKVT"
inline constexpr uint16_t kWireVersion = 1;
inline constexpr uint32_t kMaxFrameJsonBytes = 64u << 20;

enum class MsgType : uint16_t {
  kGetDescriptor = 1,
  kDescriptor = 2,
  kReadBlocks = 3,
  kBlocks = 4,
  kDone = 5,
  kAck = 6,
  kError = 7,
};

struct FrameHeader {
  MsgType type = MsgType::kError;
  uint32_t json_bytes = 0;
  uint64_t payload_bytes = 0;
};

struct Frame {
  MsgType type = MsgType::kError;
  Json json;
  uint64_t payload_bytes = 0;  // still to be read from the connection
};

// Sends header + json (the payload, if any, is written by the caller next).
Status send_frame(Connection& conn, MsgType type, const Json& json, uint64_t payload_bytes,
                  const ReadContext& ctx);
// Reads header + json; the caller then reads payload_bytes.
Result<Frame> recv_frame(Connection& conn, const ReadContext& ctx);

Status send_error(Connection& conn, const Status& status, const ReadContext& ctx);
// A kError frame back as a Status (keeping the peer's code).
Status status_from_error_frame(const Frame& frame, const std::string& peer);

}  // namespace baton

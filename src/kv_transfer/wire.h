// The KV agent's wire protocol. Every message is one frame:
//
//   header (24 bytes, little endian):
//     u32 magic 'BKVT' | u16 version | u16 type | u32 json_bytes | u32 reserved | u64 payload_bytes
//   json   (json_bytes of UTF-8 JSON, an object, at most kMaxFrameJsonBytes)
//   payload (payload_bytes of raw block data, streamed; only kBlocks)
//
// A connection opens with the agent's kHello; with a secret, the reader then
// proves it holds it (kAuth, HMAC-SHA256 over both nonces) and the agent
// proves it back (kAuthOk). docs/security.md ("The KV port") has the handshake.
//
//   agent, at accept                                   kHello {auth: "none"|"hmac-sha256", nonce?, idle_timeout_ms}
//   kAuth {client_nonce, mac}                          -> kAuthOk {mac}
//   kGetDescriptor {engine_id}                         -> kDescriptor {descriptor}
//   kReadBlocks {runs: [[remote_first, n], ...], checksums: bool, request_id?, lease_token?}
//                                                      -> kBlocks {num_blocks} + payload
//   kDone {engine_id, request_id, lease_token?, renew?} -> kAck {}  (renew: extend the lease)
//   kProgress {request_id, lease_token, num_blocks_known, wait_ms}
//                                                      -> kAck {block_ids, num_blocks_ready, finished}
//        (streamed KV: waits up to wait_ms for more than num_blocks_known
//         blocks of a lease still being computed; block_ids are the ready
//         ones past num_blocks_known; also renews the lease)
//   any request                                        -> kError {code, message}
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"
#include "kv_transfer/connection.h"

namespace baton {

inline constexpr uint32_t kWireMagic = 0x54564B42;  // "BKVT"
inline constexpr uint16_t kWireVersion = 2;         // 2: kHello/kAuth/kAuthOk, lease tokens
inline constexpr size_t kFrameHeaderBytes = 24;
// A frame's JSON: the largest legitimate one (a read of a long prompt's block
// runs, a descriptor) is a few tens of KiB.
inline constexpr uint32_t kMaxFrameJsonBytes = 1u << 20;

enum class MsgType : uint16_t {
  kGetDescriptor = 1,
  kDescriptor = 2,
  kReadBlocks = 3,
  kBlocks = 4,
  kDone = 5,
  kAck = 6,
  kError = 7,
  kHello = 8,
  kAuth = 9,
  kAuthOk = 10,
  kProgress = 11,
};
inline constexpr uint16_t kMaxMsgType = 11;

struct FrameHeader {
  MsgType type = MsgType::kError;
  uint32_t json_bytes = 0;
  uint64_t payload_bytes = 0;
};

struct Frame {
  MsgType type = MsgType::kError;
  Json json;                   // always an object
  uint64_t payload_bytes = 0;  // still to be read from the connection
};

// Checks and decodes the 24 header bytes: magic, version, type, and JSON
// size at most max_json_bytes. `peer` names the sender in errors.
Result<FrameHeader> decode_frame_header(const uint8_t* bytes, uint32_t max_json_bytes, const std::string& peer);
// Parses a frame's JSON (never throws; nesting capped); it must be an object.
Result<Json> decode_frame_json(std::string_view json, const std::string& peer);

// Assembles request frames from bytes as they arrive, allocating only for
// bytes that came (never the size a header announces). Callable on any bytes
// (the agent's poller feeds it from sockets; fuzz targets feed it directly).
class FrameReader {
 public:
  explicit FrameReader(uint32_t max_json_bytes = kMaxFrameJsonBytes) : max_json_bytes_(max_json_bytes) {}
  // How many more bytes the current frame needs (never reads past a frame).
  size_t bytes_wanted() const;
  // Takes up to bytes_wanted() of `n` bytes; returns how many it took. An
  // error (bad header, oversized JSON, a payload on a request, bad JSON) is
  // final: the connection is to be dropped.
  Result<size_t> feed(const uint8_t* data, size_t n, const std::string& peer);
  bool has_frame() const { return ready_; }
  // The completed frame; the reader then starts the next one.
  Frame take();
  // Whether some bytes of a frame have arrived (a frame deadline runs).
  bool in_frame() const { return have_header_bytes_ > 0; }
  void set_max_json_bytes(uint32_t n) { max_json_bytes_ = n; }

 private:
  uint32_t max_json_bytes_;
  uint8_t header_[kFrameHeaderBytes] = {};
  size_t have_header_bytes_ = 0;
  FrameHeader header_decoded_;
  std::string json_;
  bool ready_ = false;
  Frame frame_;
};

// Sends header + json (the payload, if any, is written by the caller next).
Status send_frame(Connection& conn, MsgType type, const Json& json, uint64_t payload_bytes, const ReadContext& ctx);
// Reads header + json (at most max_json_bytes); the caller then reads payload_bytes.
Result<Frame> recv_frame(Connection& conn, const ReadContext& ctx, uint32_t max_json_bytes = kMaxFrameJsonBytes);

Status send_error(Connection& conn, const Status& status, const ReadContext& ctx);
// A kError frame back as a Status (keeping the peer's code).
Status status_from_error_frame(const Frame& frame, const std::string& peer);

// Type-checked fields of a frame's JSON object (a wrong type is an error
// naming the field; nlohmann's value() would throw).
Result<std::string> frame_string(const Json& obj, const char* key, bool required);
Result<bool> frame_bool(const Json& obj, const char* key, bool fallback);
// An integer in [0, INT64_MAX] (no floats, no unsigned beyond int64).
Result<int64_t> frame_nonnegative_int(const Json& value, const char* what);

// The "runs" ([[first, count], ...]) of a read request from a peer, each
// checked inside [0, num_blocks) without computing first + count (a peer's
// numbers may be anything); remote_first and num_blocks are set.
Result<std::vector<BlockRun>> parse_read_runs(const Json& request, int64_t num_blocks);

}  // namespace baton

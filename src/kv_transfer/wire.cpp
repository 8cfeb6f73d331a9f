#include "kv_transfer/wire.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace baton {

namespace {
// The blocking reader takes a frame's JSON this much at a time, so memory
// follows the bytes that came, not the size the header claims.
constexpr size_t kJsonChunkBytes = 64u << 10;

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

Result<FrameHeader> decode_frame_header(const uint8_t* header, uint32_t max_json_bytes, const std::string& peer) {
  if (get<uint32_t>(header) != kWireMagic) {
    return data_loss("KV peer {}: bad frame magic {:08x} (not a baton KV agent?)", peer, get<uint32_t>(header));
  }
  if (get<uint16_t>(header + 4) != kWireVersion) {
    return failed_precondition("KV peer {}: wire version {} (this build speaks {})", peer, get<uint16_t>(header + 4),
                               kWireVersion);
  }
  const uint16_t type = get<uint16_t>(header + 6);
  if (type < 1 || type > kMaxMsgType) return data_loss("KV peer {}: unknown message type {}", peer, type);
  FrameHeader h;
  h.type = static_cast<MsgType>(type);
  h.json_bytes = get<uint32_t>(header + 8);
  h.payload_bytes = get<uint64_t>(header + 16);
  if (h.json_bytes > max_json_bytes) {
    return resource_exhausted("KV peer {}: frame JSON of {} bytes exceeds the limit of {}", peer, h.json_bytes,
                              max_json_bytes);
  }
  return h;
}

Result<Json> decode_frame_json(std::string_view json, const std::string& peer) {
  if (json.empty()) return Json::object();
  BATON_ASSIGN_OR_RETURN(Json j, parse_json(json, "KV frame from " + peer));
  if (!j.is_object()) return invalid_argument("KV peer {}: frame JSON is a {}, not an object", peer, j.type_name());
  return j;
}

size_t FrameReader::bytes_wanted() const {
  if (ready_) return 0;
  if (have_header_bytes_ < kFrameHeaderBytes) return kFrameHeaderBytes - have_header_bytes_;
  return header_decoded_.json_bytes - json_.size();
}

Result<size_t> FrameReader::feed(const uint8_t* data, size_t n, const std::string& peer) {
  size_t used = 0;
  if (ready_) return used;
  if (have_header_bytes_ < kFrameHeaderBytes) {
    const size_t take = std::min(n, kFrameHeaderBytes - have_header_bytes_);
    std::memcpy(header_ + have_header_bytes_, data, take);
    have_header_bytes_ += take;
    used += take;
    if (have_header_bytes_ < kFrameHeaderBytes) return used;
    BATON_ASSIGN_OR_RETURN(header_decoded_, decode_frame_header(header_, max_json_bytes_, peer));
    if (header_decoded_.payload_bytes != 0) {
      return invalid_argument("KV peer {}: a request frame carries no payload (this one announces {} bytes)", peer,
                              header_decoded_.payload_bytes);
    }
  }
  const size_t take = std::min(n - used, static_cast<size_t>(header_decoded_.json_bytes) - json_.size());
  json_.append(reinterpret_cast<const char*>(data) + used, take);
  used += take;
  if (json_.size() < header_decoded_.json_bytes) return used;
  BATON_ASSIGN_OR_RETURN(frame_.json, decode_frame_json(json_, peer));
  frame_.type = header_decoded_.type;
  frame_.payload_bytes = 0;
  ready_ = true;
  return used;
}

Frame FrameReader::take() {
  Frame out = std::move(frame_);
  frame_ = Frame{};
  ready_ = false;
  have_header_bytes_ = 0;
  header_decoded_ = FrameHeader{};
  std::string().swap(json_);  // a large frame's buffer is not kept for the idle connection
  return out;
}

Status send_frame(Connection& conn, MsgType type, const Json& json, uint64_t payload_bytes, const ReadContext& ctx) {
  const std::string body = dump_json(json);
  if (body.size() > kMaxFrameJsonBytes) {
    return out_of_range("KV frame JSON of {} bytes exceeds the limit of {}", body.size(), kMaxFrameJsonBytes);
  }
  uint8_t header[kFrameHeaderBytes] = {};
  put_u32(header, kWireMagic);
  put_u16(header + 4, kWireVersion);
  put_u16(header + 6, static_cast<uint16_t>(type));
  put_u32(header + 8, static_cast<uint32_t>(body.size()));
  put_u32(header + 12, 0);
  put_u64(header + 16, payload_bytes);
  return conn.write_all({boost::asio::buffer(header, kFrameHeaderBytes), boost::asio::buffer(body)}, ctx);
}

Result<Frame> recv_frame(Connection& conn, const ReadContext& ctx, uint32_t max_json_bytes) {
  uint8_t header[kFrameHeaderBytes];
  BATON_RETURN_IF_ERROR(conn.read_all(header, kFrameHeaderBytes, ctx));
  BATON_ASSIGN_OR_RETURN(FrameHeader h, decode_frame_header(header, max_json_bytes, conn.peer_name()));
  std::string body;
  while (body.size() < h.json_bytes) {
    const size_t take = std::min(kJsonChunkBytes, static_cast<size_t>(h.json_bytes) - body.size());
    const size_t at = body.size();
    body.resize(at + take);
    BATON_RETURN_IF_ERROR(conn.read_all(body.data() + at, take, ctx));
  }
  Frame frame;
  frame.type = h.type;
  frame.payload_bytes = h.payload_bytes;
  BATON_ASSIGN_OR_RETURN(frame.json, decode_frame_json(body, conn.peer_name()));
  return frame;
}

Status send_error(Connection& conn, const Status& status, const ReadContext& ctx) {
  return send_frame(conn, MsgType::kError,
                    Json{{"code", static_cast<int>(status.code())}, {"message", status.message()}}, 0, ctx);
}

Status status_from_error_frame(const Frame& frame, const std::string& peer) {
  int code = static_cast<int>(StatusCode::kInternal);
  if (auto it = frame.json.find("code"); it != frame.json.end() && it->is_number_integer()) {
    const int64_t c = it->get<int64_t>();
    if (c > 0 && c <= static_cast<int64_t>(StatusCode::kInternal)) code = static_cast<int>(c);
  }
  std::string message = "(no message)";
  if (auto it = frame.json.find("message"); it != frame.json.end() && it->is_string()) {
    message = it->get<std::string>();
  }
  return Status(static_cast<StatusCode>(code), "KV peer " + peer + ": " + message);
}

Result<std::string> frame_string(const Json& obj, const char* key, bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return invalid_argument("KV frame has no '{}'", key);
    return std::string();
  }
  if (!it->is_string()) return invalid_argument("KV frame field '{}' must be a string, not {}", key, it->type_name());
  return it->get<std::string>();
}

Result<bool> frame_bool(const Json& obj, const char* key, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return invalid_argument("KV frame field '{}' must be a boolean, not {}", key, it->type_name());
  return it->get<bool>();
}

Result<int64_t> frame_nonnegative_int(const Json& v, const char* what) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return out_of_range("{} {} is beyond the largest block id", what, u);
    }
    return static_cast<int64_t>(u);
  }
  if (!v.is_number_integer()) return invalid_argument("{} must be an integer, not {}", what, v.type_name());
  const int64_t i = v.get<int64_t>();
  if (i < 0) return out_of_range("{} {} is negative", what, i);
  return i;
}

// The runs of a read request, each checked inside [0, num_blocks) without
// computing first + n (a peer's numbers may be anything).
Result<std::vector<BlockRun>> parse_read_runs(const Json& request, int64_t num_blocks) {
  auto it = request.find("runs");
  if (it == request.end() || !it->is_array()) return invalid_argument("read request without 'runs' (an array)");
  if (it->empty()) return invalid_argument("read request with no runs");
  std::vector<BlockRun> runs;
  runs.reserve(it->size());
  int64_t total = 0;
  for (const Json& r : *it) {
    if (!r.is_array() || r.size() != 2) return invalid_argument("read request: each run must be [first, count]");
    BATON_ASSIGN_OR_RETURN(const int64_t first, frame_nonnegative_int(r[0], "read request: a run's first block"));
    BATON_ASSIGN_OR_RETURN(const int64_t n, frame_nonnegative_int(r[1], "read request: a run's block count"));
    if (n == 0) return invalid_argument("read request: a run of 0 blocks");
    if (first >= num_blocks || n > num_blocks - first) {
      return out_of_range("read request: {} blocks from block {} are not inside the cache's [0, {})", n, first,
                          num_blocks);
    }
    // No read needs more blocks than the whole cache.
    if (n > num_blocks - total) {
      return out_of_range("read request: more blocks than the cache holds ({})", num_blocks);
    }
    total += n;
    runs.push_back({first, 0, n});
  }
  return runs;
}

}  // namespace baton

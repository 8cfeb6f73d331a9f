#include "kv_transfer/ucx_protocol.h"

#include <cstring>

#include "kv_transfer/wire.h"

namespace baton {

namespace {
// The reply header: seq, status code, message length, then the message.
struct PackedReplyHeader {
  uint64_t seq;
  int32_t code;
  uint32_t message_bytes;
};
}  // namespace

std::string encode_ucx_read_request(const UcxReadRequest& request) {
  Json runs = Json::array();
  for (const auto& run : request.runs) runs.push_back(Json::array({run.remote_first, run.num_blocks}));
  Json j{{"seq", request.seq},
         {"access_token", request.access_token},
         {"request_id", request.request_id},
         {"lease_token", request.lease_token},
         {"runs", std::move(runs)},
         {"checksums", request.checksums},
         {"rendezvous", request.rendezvous}};
  return j.dump();
}

Result<UcxReadRequest> decode_ucx_read_request(const void* data, size_t num_bytes, int64_t num_blocks,
                                               uint64_t* seq_out) {
  if (num_bytes > kMaxUcxRequestBytes) {
    return invalid_argument("ucx read request of {} bytes (at most {})", num_bytes, kMaxUcxRequestBytes);
  }
  BATON_ASSIGN_OR_RETURN(Json j,
                         decode_frame_json(std::string_view(static_cast<const char*>(data), num_bytes), "ucx peer"));
  UcxReadRequest r;
  auto seq = j.find("seq");
  if (seq == j.end()) return invalid_argument("ucx read request without 'seq'");
  BATON_ASSIGN_OR_RETURN(const int64_t s, frame_nonnegative_int(*seq, "ucx read request: seq"));
  r.seq = static_cast<uint64_t>(s);
  *seq_out = r.seq;
  BATON_ASSIGN_OR_RETURN(r.access_token, frame_string(j, "access_token", true));
  BATON_ASSIGN_OR_RETURN(r.request_id, frame_string(j, "request_id", false));
  BATON_ASSIGN_OR_RETURN(r.lease_token, frame_string(j, "lease_token", false));
  BATON_ASSIGN_OR_RETURN(r.checksums, frame_bool(j, "checksums", false));
  BATON_ASSIGN_OR_RETURN(r.rendezvous, frame_bool(j, "rendezvous", false));
  BATON_ASSIGN_OR_RETURN(r.runs, parse_read_runs(j, num_blocks));
  return r;
}

std::string encode_ucx_reply_header(uint64_t seq, const Status& status) {
  const std::string& message = status.message();
  const size_t message_bytes = std::min(message.size(), kMaxUcxReplyMessageBytes);
  PackedReplyHeader h{seq, static_cast<int32_t>(status.code()), static_cast<uint32_t>(message_bytes)};
  std::string out(sizeof(h) + message_bytes, '\0');
  std::memcpy(out.data(), &h, sizeof(h));
  std::memcpy(out.data() + sizeof(h), message.data(), message_bytes);
  return out;
}

Result<UcxReplyHeader> decode_ucx_reply_header(const void* header, size_t num_bytes) {
  PackedReplyHeader h{};
  if (num_bytes < sizeof(h)) return data_loss("ucx reply header of {} bytes (at least {})", num_bytes, sizeof(h));
  std::memcpy(&h, header, sizeof(h));
  if (h.message_bytes > kMaxUcxReplyMessageBytes || num_bytes != sizeof(h) + h.message_bytes) {
    return data_loss("ucx reply header of {} bytes announces a {}-byte message", num_bytes, h.message_bytes);
  }
  if (h.code < 0 || h.code > static_cast<int32_t>(StatusCode::kInternal)) {
    return data_loss("ucx reply with unknown status code {}", h.code);
  }
  UcxReplyHeader out;
  out.seq = h.seq;
  if (h.code != 0) {
    std::string message(static_cast<const char*>(header) + sizeof(h), h.message_bytes);
    out.status = Status(static_cast<StatusCode>(h.code), message.empty() ? "(no message)" : std::move(message));
  }
  return out;
}

}  // namespace baton

// The ucx transport's two active messages (docs/DESIGN.md, "The ucx
// transport"). A reader sends kUcxReadRequest (JSON data: the access token
// from the authenticated descriptor, the lease, the block runs, whether it
// wants checksums, a sequence number) with a reply endpoint; the server
// answers kUcxReadReply: a small binary header (sequence number, status code,
// message) and, when the code is OK, the blocks in run order followed by one
// xxHash64 per block when asked. Large replies go by UCX rendezvous: on RDMA
// the reader's NIC reads the served blocks straight out of the KV region.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "kv_transfer/block_runs.h"

namespace baton {

inline constexpr uint16_t kUcxReadRequest = 23;
inline constexpr uint16_t kUcxReadReply = 24;
// A request larger than this is refused unread (a read names its runs, not its data).
inline constexpr size_t kMaxUcxRequestBytes = 1u << 20;
// An error message in a reply is cut to this many bytes.
inline constexpr size_t kMaxUcxReplyMessageBytes = 512;

struct UcxReadRequest {
  uint64_t seq = 0;
  std::string access_token;  // the server's, from its descriptor
  std::string request_id;    // the lease (empty: none)
  std::string lease_token;
  std::vector<BlockRun> runs;  // remote_first and num_blocks are sent
  bool checksums = false;
  bool rendezvous = false;  // the reply must go by rendezvous (it lands in device memory)
};

std::string encode_ucx_read_request(const UcxReadRequest& request);
// Parses a request from a peer; runs are checked inside [0, num_blocks).
// `seq` gets the request's sequence number as soon as it is read, so that a
// refusal can still name the request it answers.
Result<UcxReadRequest> decode_ucx_read_request(const void* data, size_t num_bytes, int64_t num_blocks, uint64_t* seq);

struct UcxReplyHeader {
  uint64_t seq = 0;
  Status status;  // OK: data follows
};

std::string encode_ucx_reply_header(uint64_t seq, const Status& status);
Result<UcxReplyHeader> decode_ucx_reply_header(const void* header, size_t num_bytes);

}  // namespace baton

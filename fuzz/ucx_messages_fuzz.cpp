// The ucx transport's active messages (src/kv_transfer/ucx_protocol): the
// input's first byte picks what a peer sent, the rest is its payload:
//   even: a read request as a KV server receives it (a region of 64 blocks);
//   odd:  a reply header as a reader receives it.
// Decoding must return a value or an error that says what is wrong; a
// request that decodes names only runs inside the region and survives
// encoding and decoding again unchanged; a reply's message stays bounded.
// fuzz-link: baton_kv_transfer
#include <cstdint>
#include <cstdlib>

#include "kv_transfer/ucx_protocol.h"

namespace {

constexpr int64_t kNumBlocks = 64;

void check_request(const uint8_t* data, size_t size) {
  uint64_t seq = 0;
  auto request = baton::decode_ucx_read_request(data, size, kNumBlocks, &seq);
  if (!request.is_ok()) {
    if (request.status().message().empty()) std::abort();
    return;
  }
  if (request->seq != seq) std::abort();
  for (const baton::BlockRun& run : request->runs) {
    if (run.remote_first < 0 || run.num_blocks <= 0 || run.remote_first + run.num_blocks > kNumBlocks) std::abort();
  }
  const std::string again = baton::encode_ucx_read_request(*request);
  uint64_t seq2 = 0;
  auto round_trip = baton::decode_ucx_read_request(again.data(), again.size(), kNumBlocks, &seq2);
  if (!round_trip.is_ok()) std::abort();
  if (round_trip->seq != request->seq || round_trip->access_token != request->access_token ||
      round_trip->request_id != request->request_id || round_trip->lease_token != request->lease_token ||
      round_trip->checksums != request->checksums || round_trip->rendezvous != request->rendezvous ||
      round_trip->runs.size() != request->runs.size()) {
    std::abort();
  }
  for (size_t i = 0; i < request->runs.size(); ++i) {
    if (round_trip->runs[i].remote_first != request->runs[i].remote_first ||
        round_trip->runs[i].num_blocks != request->runs[i].num_blocks) {
      std::abort();
    }
  }
}

void check_reply(const uint8_t* data, size_t size) {
  auto reply = baton::decode_ucx_reply_header(data, size);
  if (!reply.is_ok()) {
    if (reply.status().message().empty()) std::abort();
    return;
  }
  if (reply->status.message().size() > baton::kMaxUcxReplyMessageBytes + 64) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    check_request(data + 1, size - 1);
  } else {
    check_reply(data + 1, size - 1);
  }
  return 0;
}

// UcxServer: the serving side of the ucx transport (a prefill instance). It
// owns a UCX worker and one thread that progresses it; read requests arrive
// as active messages (ucx_protocol.h) and each is checked before a byte
// moves: the access token (handed out only in the descriptor, which the KV
// agent serves after the authenticated handshake), the block runs (inside
// the KV region), and the lease (the connector's grant check). The blocks
// are then sent from the region itself (host KV, or device KV when UCX moves
// CUDA memory), or staged through host memory (device KV otherwise).
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>

#include "common/status.h"
#include "kv_transfer/kv_region.h"
#include "kv_transfer/transport.h"
#include "kv_transfer/ucx_protocol.h"
#include "kv_transfer/ucx_worker.h"

namespace baton {

struct UcxServerOptions {
  UcxWorkerOptions worker;
  GrantCheck check_grant;  // unset: every block of the region may be read (tests, benchmarks)
  // Device KV staged through host memory: at most this many bytes in flight
  // at once; further requests wait for sends to finish.
  size_t max_staging_bytes = 256u << 20;
};

struct UcxServerStats {
  uint64_t num_reads = 0;
  uint64_t num_bytes_served = 0;
  uint64_t num_refused = 0;  // bad token, bad runs, no lease, undecodable
};

class UcxServer {
 public:
  static Result<std::unique_ptr<UcxServer>> start(const KvRegionDesc& region, UcxServerOptions options);
  ~UcxServer();
  UcxServer(const UcxServer&) = delete;
  UcxServer& operator=(const UcxServer&) = delete;

  const std::string& address() const { return worker_->address(); }
  // 128 random bits (hex) a read must present.
  const std::string& access_token() const { return access_token_; }
  UcxServerStats stats() const;

 private:
  struct Request {
    std::string body;
    ucp_ep_h reply_ep = nullptr;
  };
  struct Send;

  UcxServer(const KvRegionDesc& region, UcxServerOptions options) : region_(region), options_(std::move(options)) {}
  static ucs_status_t on_request(void* arg, const void* header, size_t header_length, void* data, size_t length,
                                 const ucp_am_recv_param_t* param);
  static void on_send_done(void* request, ucs_status_t status, void* user_data);
  void loop();
  // Answers the first queued request, unless it must wait for staging room.
  bool answer_next();
  // Fills the send with the blocks of the request (and their checksums).
  Status prepare_blocks(const UcxReadRequest& request, Send& send);
  void send_reply(ucp_ep_h ep, uint64_t seq, const Status& status, std::unique_ptr<Send> send);
  void reap_sends();

  KvRegionDesc region_;
  UcxServerOptions options_;
  std::unique_ptr<UcxWorker> worker_;
  std::string access_token_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  // Touched only by the loop thread (the request handler runs inside its
  // progress calls).
  std::deque<Request> queue_;
  std::unordered_set<Send*> sends_;
  size_t staging_in_flight_ = 0;
  std::atomic<uint64_t> num_reads_{0}, num_bytes_served_{0}, num_refused_{0};
};

}  // namespace baton

// UcxLink: the reading side of the ucx transport, one per peer. It owns a
// UCX worker and an endpoint to the peer's UcxServer; a read sends one
// request per run (cut into pieces of at most max_request_bytes), up to 8 in
// flight, and receives each reply straight into the run's local blocks, one
// contiguous buffer, so that large ones go by zero-copy rendezvous (host KV,
// or device KV when UCX moves CUDA memory), or through a host staging buffer
// (device KV otherwise). Reads on one link take turns. A read that ends
// early (deadline, cancel, peer gone) closes the endpoint and the worker
// before it returns, so nothing lands in the local blocks afterwards; the
// next read reconnects.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kv_transfer/transport.h"
#include "kv_transfer/ucx_worker.h"

namespace baton {

struct UcxPeer {
  std::string engine_id;
  std::string address;       // the server worker's UCX address (bytes)
  std::string access_token;  // from its descriptor
  int64_t pid = 0;           // > 0: a process on this host whose exit means the peer is gone
};

struct UcxLinkOptions {
  UcxWorkerOptions worker;
  size_t max_request_bytes = 64u << 20;  // blocks asked for in one request
};

class UcxLink : public PeerLink {
 public:
  static Result<std::unique_ptr<UcxLink>> open(const KvRegionDesc& local, UcxPeer peer, UcxLinkOptions options);
  ~UcxLink() override;

  Result<std::vector<uint64_t>> read(const std::vector<BlockRun>& runs, bool want_checksums,
                                     const ReadContext& ctx) override;

 private:
  struct Pending;

  UcxLink(const KvRegionDesc& local, UcxPeer peer, UcxLinkOptions options)
      : local_(local), peer_(std::move(peer)), options_(std::move(options)) {}
  // Creates the worker (if none) and the endpoint (if none).
  Status connect();
  Status create_worker(const std::string& tls);
  Status create_ep(bool handle_peer_failure);
  // Closes the endpoint (force: at once, without telling the peer) and
  // destroys the worker: every operation still in flight is cancelled.
  void reset(bool force);
  // The read's requests: each run cut into pieces of at most
  // max_request_bytes of whole blocks.
  std::vector<std::unique_ptr<Pending>> plan(const std::vector<BlockRun>& runs, bool want_checksums);
  // Sets where the piece lands (staging taken if needed) and sends its request.
  Status start_piece(Pending& piece, bool want_checksums, const KvGrant* grant);
  Status send_request(Pending& pending, bool want_checksums, const KvGrant* grant);
  bool direct_device() const;

  static ucs_status_t on_reply(void* arg, const void* header, size_t header_length, void* data, size_t length,
                               const ucp_am_recv_param_t* param);
  static void on_ep_error(void* arg, ucp_ep_h ep, ucs_status_t status);

  KvRegionDesc local_;
  UcxPeer peer_;
  UcxLinkOptions options_;
  std::mutex mu_;  // one read at a time; guards everything below
  std::unique_ptr<UcxWorker> worker_;
  ucp_ep_h ep_ = nullptr;
  ucs_status_t ep_error_ = UCS_OK;
  std::map<uint64_t, Pending*> in_flight_;  // the read's requests by sequence number, for the callbacks
  uint64_t next_seq_ = 1;
};

}  // namespace baton

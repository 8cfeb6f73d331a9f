#include "kv_transfer/ucx_link.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kv_transfer/peer_process.h"
#include "kv_transfer/ucx_protocol.h"

namespace baton {

namespace {
constexpr int64_t kCloseTimeoutMs = 1000;   // a forced endpoint close waits at most this long
constexpr size_t kMaxRequestsInFlight = 8;  // per read: bounds staging memory, keeps the pipe full
}  // namespace

// One request of a read: whole blocks of one run, contiguous on both sides
// (so a large reply goes by zero-copy rendezvous), where they land and how
// the request ended.
struct UcxLink::Pending {
  uint64_t seq = 0;
  BlockRun run;
  std::string body;           // the request, alive until its send completes
  uint8_t* buffer = nullptr;  // the local blocks, or host staging for them
  uint8_t* staging = nullptr;
  size_t data_bytes = 0;
  ucs_memory_type_t memory_type = UCS_MEMORY_TYPE_HOST;
  std::vector<uint64_t> sums;     // when asked: one per block, after the data
  std::vector<ucp_dt_iov_t> iov;  // with sums: the data, then the sums
  size_t expected_bytes = 0;
  bool send_done = false;
  bool done = false;  // the reply came and its data landed, or it failed
  Status status;
};

Result<std::unique_ptr<UcxLink>> UcxLink::open(const KvRegionDesc& local, UcxPeer peer, UcxLinkOptions options) {
  if (peer.address.empty() || peer.access_token.empty()) {
    return failed_precondition("ucx transport: peer '{}' serves no ucx reads (no worker address in its descriptor)",
                               peer.engine_id);
  }
  if (options.max_request_bytes == 0) return invalid_argument("ucx transport: max_request_bytes must be > 0");
  std::unique_ptr<UcxLink> link(new UcxLink(local, std::move(peer), std::move(options)));
  std::lock_guard<std::mutex> lock(link->mu_);
  BATON_RETURN_IF_ERROR(link->connect());
  if (local.memory == MemoryKind::kDevice && local.copier == nullptr && !link->direct_device()) {
    return failed_precondition(
        "ucx transport: this UCX build cannot move CUDA memory and the device KV region has no staging copier");
  }
  return link;
}

UcxLink::~UcxLink() {
  std::lock_guard<std::mutex> lock(mu_);
  reset(/*force=*/false);
}

bool UcxLink::direct_device() const { return local_.memory == MemoryKind::kDevice && worker_->supports_cuda_memory(); }

Status UcxLink::create_worker(const std::string& tls) {
  UcxWorkerOptions wo = options_.worker;
  wo.tls = tls;
  wo.serialized = true;
  BATON_ASSIGN_OR_RETURN(worker_, UcxWorker::create(wo));
  ucp_am_handler_param_t handler{};
  handler.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG |
                       UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
  handler.id = kUcxReadReply;
  handler.cb = &UcxLink::on_reply;
  handler.arg = this;
  handler.flags = UCP_AM_FLAG_WHOLE_MSG;
  const ucs_status_t st = ucp_worker_set_am_recv_handler(worker_->worker(), &handler);
  if (st != UCS_OK) {
    worker_.reset();
    return unavailable("ucx: cannot set the reply handler: {}", ucx_error(st));
  }
  return Status::ok();
}

Status UcxLink::create_ep(bool handle_peer_failure) {
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS;
  params.address = reinterpret_cast<const ucp_address_t*>(peer_.address.data());
  if (handle_peer_failure) {
    params.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
    params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    params.err_handler.cb = &UcxLink::on_ep_error;
    params.err_handler.arg = this;
  }
  ep_error_ = UCS_OK;
  const ucs_status_t st = ucp_ep_create(worker_->worker(), &params, &ep_);
  if (st == UCS_OK) return Status::ok();
  ep_ = nullptr;
  return unavailable("ucx transport: cannot reach peer '{}' ({}): no UCX transport in common, or it is gone",
                     peer_.engine_id, ucx_error(st));
}

Status UcxLink::connect() {
  if (ep_ != nullptr) return Status::ok();
  // UCX's shared-memory transports cannot report a peer's failure, so an
  // endpoint that asks for failure handling leaves them out; there the
  // peer's pid and the read's deadline stand in. Over tcp or RDMA failure
  // handling stays on: without it UCX aborts the process when a connection
  // is lost mid-operation. A peer on this host with no transports asked for
  // gets shared memory first (the fast path there), else UCX's choice.
  const bool same_host_default = options_.worker.tls.empty() && std::getenv("UCX_TLS") == nullptr && peer_.pid > 0;
  if (same_host_default && worker_ == nullptr) {
    BATON_RETURN_IF_ERROR(create_worker("sm"));
    if (create_ep(/*handle_peer_failure=*/false).is_ok()) return Status::ok();
    worker_.reset();
  }
  if (worker_ == nullptr) BATON_RETURN_IF_ERROR(create_worker(options_.worker.tls));
  if (options_.worker.tls == "sm") return create_ep(/*handle_peer_failure=*/false);
  Status st = create_ep(/*handle_peer_failure=*/true);
  if (!st.is_ok()) st = create_ep(/*handle_peer_failure=*/false);  // shared memory only, after all
  return st;
}

void UcxLink::reset(bool force) {
  if (ep_ != nullptr && worker_ != nullptr) {
    ucp_request_param_t params{};
    params.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    params.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0;
    void* request = ucp_ep_close_nbx(ep_, &params);
    if (UCS_PTR_IS_PTR(request)) {
      const ReadContext ctx{deadline_after_ms(kCloseTimeoutMs), nullptr};
      (void)worker_->progress_until([&] { return ucp_request_check_status(request) != UCS_INPROGRESS; }, ctx,
                                    "closing the endpoint");
      ucp_request_free(request);
    }
  }
  ep_ = nullptr;
  worker_.reset();
}

void UcxLink::on_ep_error(void* arg, ucp_ep_h ep, ucs_status_t status) {
  auto* link = static_cast<UcxLink*>(arg);
  link->ep_error_ = status;
  for (auto& [seq, pending] : link->in_flight_) {
    if (pending->done) continue;
    pending->status = unavailable("ucx transport: connection to peer '{}' failed: {}", link->peer_.engine_id,
                                  ucx_error(status));
    pending->done = true;
  }
}

ucs_status_t UcxLink::on_reply(void* arg, const void* header, size_t header_length, void* data, size_t length,
                               const ucp_am_recv_param_t* param) {
  auto* link = static_cast<UcxLink*>(arg);
  auto reply = decode_ucx_reply_header(header, header_length);
  if (!reply.is_ok()) {  // garbage: every request in flight fails
    for (auto& [seq, pending] : link->in_flight_) {
      if (!pending->done) pending->status = reply.status();
      pending->done = true;
    }
    return UCS_OK;
  }
  auto it = link->in_flight_.find(reply->seq);
  if (it == link->in_flight_.end() || it->second->done) return UCS_OK;  // stale: dropped
  Pending* p = it->second;
  Status st = reply->status;
  if (st.is_ok() && length != p->expected_bytes) {
    st = data_loss("ucx transport: peer '{}' sent {} bytes for a read of {}", link->peer_.engine_id, length,
                   p->expected_bytes);
  }
  const bool rendezvous = (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
  if (!st.is_ok() || !rendezvous) {
    if (st.is_ok()) {  // eager: the data is here, in host memory
      std::memcpy(p->buffer, data, p->data_bytes);
      if (!p->sums.empty()) {
        std::memcpy(p->sums.data(), static_cast<const uint8_t*>(data) + p->data_bytes, p->sums.size() * 8);
      }
    }
    p->status = std::move(st);
    p->done = true;
    return UCS_OK;  // a rendezvous not received is dropped
  }
  ucp_request_param_t params{};
  params.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_DATATYPE |
                        UCP_OP_ATTR_FIELD_MEMORY_TYPE;
  params.cb.recv_am = [](void* request, ucs_status_t status, size_t, void* user_data) {
    auto* pending = static_cast<Pending*>(user_data);
    if (status != UCS_OK) pending->status = unavailable("ucx transport: receiving KV failed: {}", ucx_error(status));
    pending->done = true;
    ucp_request_free(request);
  };
  params.user_data = p;
  params.memory_type = p->memory_type;
  void* request = nullptr;
  if (p->iov.empty()) {  // contiguous: zero-copy rendezvous where the transport has it
    params.datatype = ucp_dt_make_contig(1);
    request = ucp_am_recv_data_nbx(link->worker_->worker(), data, p->buffer, p->data_bytes, &params);
  } else {
    params.datatype = ucp_dt_make_iov();
    request = ucp_am_recv_data_nbx(link->worker_->worker(), data, p->iov.data(), p->iov.size(), &params);
  }
  if (UCS_PTR_IS_ERR(request)) {
    p->status = unavailable("ucx transport: cannot receive KV: {}", ucx_error(UCS_PTR_STATUS(request)));
    p->done = true;
  } else if (request == nullptr) {
    p->done = true;
  }
  return UCS_INPROGRESS;
}

Status UcxLink::send_request(Pending& pending, bool want_checksums, const KvGrant* grant) {
  UcxReadRequest request;
  request.seq = pending.seq;
  request.access_token = peer_.access_token;
  if (grant != nullptr) {
    request.request_id = grant->request_id;
    request.lease_token = grant->lease_token;
  }
  request.runs = {pending.run};
  request.checksums = want_checksums;
  request.rendezvous = pending.memory_type != UCS_MEMORY_TYPE_HOST;
  pending.body = encode_ucx_read_request(request);
  ucp_request_param_t params{};
  params.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_FLAGS;
  params.flags = UCP_AM_SEND_FLAG_REPLY | UCP_AM_SEND_FLAG_EAGER;
  params.cb.send = [](void* req, ucs_status_t, void* user_data) {
    static_cast<Pending*>(user_data)->send_done = true;
    ucp_request_free(req);
  };
  params.user_data = &pending;
  in_flight_[pending.seq] = &pending;
  void* req = ucp_am_send_nbx(ep_, kUcxReadRequest, nullptr, 0, pending.body.data(), pending.body.size(), &params);
  if (UCS_PTR_IS_ERR(req)) {
    pending.send_done = pending.done = true;
    return unavailable("ucx transport: cannot send a read request to '{}': {}", peer_.engine_id,
                       ucx_error(UCS_PTR_STATUS(req)));
  }
  if (req == nullptr) pending.send_done = true;
  return Status::ok();
}

std::vector<std::unique_ptr<UcxLink::Pending>> UcxLink::plan(const std::vector<BlockRun>& runs, bool want_checksums) {
  const size_t block_bytes = local_.block_bytes();
  const int64_t max_blocks = static_cast<int64_t>(std::max<size_t>(options_.max_request_bytes / block_bytes, 1));
  std::vector<std::unique_ptr<Pending>> pieces;
  for (const auto& run : runs) {
    for (int64_t offset = 0; offset < run.num_blocks; offset += max_blocks) {
      auto p = std::make_unique<Pending>();
      const int64_t n = std::min(max_blocks, run.num_blocks - offset);
      p->run = {run.remote_first + offset, run.local_first + offset, n};
      p->data_bytes = static_cast<size_t>(n) * block_bytes;
      p->expected_bytes = p->data_bytes;
      if (want_checksums) {
        p->sums.resize(static_cast<size_t>(n));
        p->expected_bytes += p->sums.size() * sizeof(uint64_t);
      }
      pieces.push_back(std::move(p));
    }
  }
  return pieces;
}

Status UcxLink::start_piece(Pending& p, bool want_checksums, const KvGrant* grant) {
  p.seq = next_seq_++;
  // Device KV that UCX cannot reach lands in host staging first.
  if (local_.memory == MemoryKind::kDevice && !direct_device()) {
    BATON_ASSIGN_OR_RETURN(void* staging, local_.copier->alloc_host(p.data_bytes));
    p.staging = static_cast<uint8_t*>(staging);
    p.buffer = p.staging;
  } else {
    p.buffer = local_.block_ptr(p.run.local_first);
    if (local_.memory == MemoryKind::kDevice) p.memory_type = UCS_MEMORY_TYPE_CUDA;
  }
  if (!p.sums.empty()) {
    p.iov = {{p.buffer, p.data_bytes}, {p.sums.data(), p.sums.size() * sizeof(uint64_t)}};
  }
  return send_request(p, want_checksums, grant);
}

Result<std::vector<uint64_t>> UcxLink::read(const std::vector<BlockRun>& runs, bool want_checksums,
                                            const ReadContext& ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  BATON_RETURN_IF_ERROR(connect());
  std::vector<std::unique_ptr<Pending>> pieces = plan(runs, want_checksums);
  const std::string what = fmt::format("reading {} blocks from '{}'", count_blocks(runs), peer_.engine_id);
  const int64_t pid = peer_.pid;
  auto peer_gone = [pid] { return peer_process_exited(pid); };
  // Up to kMaxRequestsInFlight requests at once; they finish in any order,
  // and are taken in order.
  size_t num_started = 0;
  Status st;
  for (size_t i = 0; i < pieces.size() && st.is_ok(); ++i) {
    while (st.is_ok() && num_started < pieces.size() && num_started < i + kMaxRequestsInFlight) {
      st = start_piece(*pieces[num_started++], want_checksums, ctx.grant);
    }
    if (!st.is_ok()) break;
    Pending& p = *pieces[i];
    st = worker_->progress_until([&] { return p.done && p.send_done; }, ctx, what, peer_gone);
    if (st.is_ok()) st = p.status;
    if (st.is_ok() && p.staging != nullptr) {
      st = local_.copier->to_device(local_.block_ptr(p.run.local_first), p.staging, p.data_bytes);
    }
  }
  // Anything still in flight is cancelled before the pieces go away (a
  // refusal from the server leaves nothing in flight: the link stays).
  const bool settled = std::all_of(pieces.begin(), pieces.begin() + static_cast<std::ptrdiff_t>(num_started),
                                   [](const auto& p) { return p->done && p->send_done; });
  if (!settled || ep_error_ != UCS_OK) reset(/*force=*/true);
  in_flight_.clear();
  std::vector<uint64_t> sums;
  for (const auto& p : pieces) {
    if (p->staging != nullptr) local_.copier->free_host(p->staging);
    sums.insert(sums.end(), p->sums.begin(), p->sums.end());
  }
  BATON_RETURN_IF_ERROR(st);
  return sums;
}

}  // namespace baton

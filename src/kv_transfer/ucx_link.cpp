#include "kv_transfer/ucx_link.h"

#include <cstring>

#include "kv_transfer/peer_process.h"
#include "kv_transfer/stream_split.h"
#include "kv_transfer/ucx_protocol.h"

namespace baton {

namespace {
constexpr int64_t kCloseTimeoutMs = 1000;  // a forced endpoint close waits at most this long
}  // namespace

// One request of a read: where its reply goes and how it ended.
struct UcxLink::Pending {
  uint64_t seq = 0;
  std::string body;               // the request, alive until its send completes
  std::vector<ucp_dt_iov_t> iov;  // destinations: local blocks (or staging), then checksums
  size_t expected_bytes = 0;
  ucs_memory_type_t memory_type = UCS_MEMORY_TYPE_HOST;
  std::vector<uint64_t> sums;
  bool send_done = false;
  bool done = false;  // the reply came and its data landed, or it failed
  Status status;
  UcxWorker* worker = nullptr;
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

Status UcxLink::connect() {
  if (worker_ == nullptr) {
    UcxWorkerOptions wo = options_.worker;
    wo.serialized = true;
    BATON_ASSIGN_OR_RETURN(worker_, UcxWorker::create(wo));
    ucp_am_handler_param_t handler{};
    handler.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                         UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
    handler.id = kUcxReadReply;
    handler.cb = &UcxLink::on_reply;
    handler.arg = this;
    handler.flags = UCP_AM_FLAG_WHOLE_MSG;
    const ucs_status_t st = ucp_worker_set_am_recv_handler(worker_->worker(), &handler);
    if (st != UCS_OK) {
      worker_.reset();
      return unavailable("ucx: cannot set the reply handler: {}", ucx_error(st));
    }
  }
  if (ep_ != nullptr) return Status::ok();
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                      UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.address = reinterpret_cast<const ucp_address_t*>(peer_.address.data());
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = &UcxLink::on_ep_error;
  params.err_handler.arg = this;
  ep_error_ = UCS_OK;
  ucs_status_t st = ucp_ep_create(worker_->worker(), &params, &ep_);
  if (st == UCS_ERR_UNREACHABLE) {
    // UCX's shared-memory transports cannot report a peer's failure (UCX
    // logs that it left them out); without UCX's failure handling the peer's
    // pid and the read's deadline stand in. Over tcp or RDMA it must stay on:
    // without it UCX aborts the process on a connection lost mid-operation.
    params.field_mask &= ~(UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER);
    st = ucp_ep_create(worker_->worker(), &params, &ep_);
  }
  if (st != UCS_OK) {
    ep_ = nullptr;
    return unavailable("ucx transport: cannot reach peer '{}' ({}): no UCX transport in common, or it is gone",
                       peer_.engine_id, ucx_error(st));
  }
  return Status::ok();
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
  if (link->pending_ != nullptr && !link->pending_->done) {
    link->pending_->status = unavailable("ucx transport: connection to peer '{}' failed: {}", link->peer_.engine_id,
                                         ucx_error(status));
    link->pending_->done = true;
  }
}

ucs_status_t UcxLink::on_reply(void* arg, const void* header, size_t header_length, void* data, size_t length,
                               const ucp_am_recv_param_t* param) {
  auto* link = static_cast<UcxLink*>(arg);
  Pending* p = link->pending_;
  auto reply = decode_ucx_reply_header(header, header_length);
  if (p == nullptr || p->done || (reply.is_ok() && reply->seq != p->seq)) return UCS_OK;  // stale: dropped
  Status st = !reply.is_ok() ? reply.status() : reply->status;
  if (st.is_ok() && length != p->expected_bytes) {
    st = data_loss("ucx transport: peer '{}' sent {} bytes for a read of {}", link->peer_.engine_id, length,
                   p->expected_bytes);
  }
  const bool rendezvous = (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0;
  if (!st.is_ok() || !rendezvous) {
    if (st.is_ok()) {  // eager: the data is here, in host memory
      const auto* src = static_cast<const uint8_t*>(data);
      for (const auto& v : p->iov) {
        std::memcpy(v.buffer, src, v.length);
        src += v.length;
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
  params.datatype = ucp_dt_make_iov();
  params.memory_type = p->memory_type;
  void* request = ucp_am_recv_data_nbx(link->worker_->worker(), data, p->iov.data(), p->iov.size(), &params);
  if (UCS_PTR_IS_ERR(request)) {
    p->status = unavailable("ucx transport: cannot receive KV: {}", ucx_error(UCS_PTR_STATUS(request)));
    p->done = true;
  } else if (request == nullptr) {
    p->done = true;
  }
  return UCS_INPROGRESS;
}

Status UcxLink::send_request(Pending& pending, const std::vector<BlockRun>& runs, bool want_checksums,
                             const KvGrant* grant) {
  UcxReadRequest request;
  request.seq = pending.seq;
  request.access_token = peer_.access_token;
  if (grant != nullptr) {
    request.request_id = grant->request_id;
    request.lease_token = grant->lease_token;
  }
  request.runs = runs;
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
  void* req = ucp_am_send_nbx(ep_, kUcxReadRequest, nullptr, 0, pending.body.data(), pending.body.size(), &params);
  if (UCS_PTR_IS_ERR(req)) {
    return unavailable("ucx transport: cannot send a read request to '{}': {}", peer_.engine_id,
                       ucx_error(UCS_PTR_STATUS(req)));
  }
  if (req == nullptr) pending.send_done = true;
  return Status::ok();
}

Result<std::vector<uint64_t>> UcxLink::read(const std::vector<BlockRun>& runs, bool want_checksums,
                                            const ReadContext& ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t num_blocks = count_blocks(runs);
  const size_t bytes = static_cast<size_t>(num_blocks) * local_.block_bytes();
  const int num_parts = static_cast<int>(std::min<size_t>(
      (bytes + options_.max_request_bytes - 1) / options_.max_request_bytes, static_cast<size_t>(num_blocks)));
  std::vector<uint64_t> sums;
  for (const StreamPart& part : split_runs_for_streams(runs, std::max(num_parts, 1))) {
    BATON_ASSIGN_OR_RETURN(auto part_sums, read_part(part.runs, want_checksums, ctx));
    sums.insert(sums.end(), part_sums.begin(), part_sums.end());
  }
  return sums;
}

Result<std::vector<uint64_t>> UcxLink::read_part(const std::vector<BlockRun>& runs, bool want_checksums,
                                                 const ReadContext& ctx) {
  BATON_RETURN_IF_ERROR(connect());
  const size_t block_bytes = local_.block_bytes();
  const int64_t num_blocks = count_blocks(runs);
  Pending pending;
  pending.seq = next_seq_++;
  pending.expected_bytes = static_cast<size_t>(num_blocks) * block_bytes;
  // Device KV that UCX cannot reach lands in host staging first.
  const bool staged = local_.memory == MemoryKind::kDevice && !direct_device();
  void* staging = nullptr;
  if (staged) {
    BATON_ASSIGN_OR_RETURN(staging, local_.copier->alloc_host(pending.expected_bytes));
    pending.iov.push_back({staging, pending.expected_bytes});
  } else {
    for (const auto& run : runs) {
      pending.iov.push_back({local_.block_ptr(run.local_first), static_cast<size_t>(run.num_blocks) * block_bytes});
    }
    if (local_.memory == MemoryKind::kDevice) pending.memory_type = UCS_MEMORY_TYPE_CUDA;
  }
  if (want_checksums) {
    pending.sums.resize(static_cast<size_t>(num_blocks));
    pending.iov.push_back({pending.sums.data(), pending.sums.size() * sizeof(uint64_t)});
    pending.expected_bytes += pending.sums.size() * sizeof(uint64_t);
  }
  pending_ = &pending;
  Status st = send_request(pending, runs, want_checksums, ctx.grant);
  if (st.is_ok()) {
    const int64_t pid = peer_.pid;
    st = worker_->progress_until([&] { return pending.done && pending.send_done; }, ctx,
                                 fmt::format("reading {} blocks from '{}'", num_blocks, peer_.engine_id),
                                 [pid] { return peer_process_exited(pid); });
  }
  if (st.is_ok()) st = pending.status;
  // Anything still in flight is cancelled before `pending` goes away (a
  // refusal from the server leaves nothing in flight: the link stays).
  if (!(pending.done && pending.send_done) || ep_error_ != UCS_OK) reset(/*force=*/true);
  pending_ = nullptr;
  if (st.is_ok() && staged) {
    size_t offset = 0;
    for (const auto& run : runs) {
      const size_t n = static_cast<size_t>(run.num_blocks) * block_bytes;
      st = local_.copier->to_device(local_.block_ptr(run.local_first), static_cast<uint8_t*>(staging) + offset, n);
      if (!st.is_ok()) break;
      offset += n;
    }
  }
  if (staging != nullptr) local_.copier->free_host(staging);
  BATON_RETURN_IF_ERROR(st);
  return std::move(pending.sums);
}

}  // namespace baton

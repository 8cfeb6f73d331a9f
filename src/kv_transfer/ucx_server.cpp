#include "kv_transfer/ucx_server.h"

#include <vector>

#include "common/log.h"
#include "kv_transfer/checksum.h"
#include "kv_transfer/kv_secret.h"

namespace baton {

namespace {
constexpr size_t kAccessTokenBytes = 16;  // 128 random bits
constexpr int kLoopSliceMs = 50;          // how often the idle loop looks at stopping_
// Requests waiting for an answer; more are dropped unread (a flood costs
// bounded memory; honest readers keep at most 8 in flight per link).
constexpr size_t kMaxQueuedRequests = 4096;
}  // namespace

// One reply in flight: what UCX reads from until the send completes.
struct UcxServer::Send {
  std::string header;
  std::vector<ucp_dt_iov_t> iov;
  std::vector<uint64_t> sums;
  ucs_memory_type_t memory_type = UCS_MEMORY_TYPE_HOST;
  uint8_t* staging = nullptr;  // device KV staged through host memory (region copier's)
  size_t staging_bytes = 0;
  uint64_t data_bytes = 0;
  bool rendezvous = false;
  bool done = false;
};

Result<std::unique_ptr<UcxServer>> UcxServer::start(const KvRegionDesc& region, UcxServerOptions options) {
  BATON_RETURN_IF_ERROR(region.validate());
  std::unique_ptr<UcxServer> server(new UcxServer(region, std::move(options)));
  BATON_ASSIGN_OR_RETURN(server->access_token_, random_hex(kAccessTokenBytes));
  BATON_ASSIGN_OR_RETURN(server->worker_, UcxWorker::create(server->options_.worker));
  if (region.memory == MemoryKind::kDevice && region.copier == nullptr && !server->worker_->supports_cuda_memory()) {
    return failed_precondition(
        "ucx transport: this UCX build cannot move CUDA memory and the device KV region has no staging copier");
  }
  ucp_am_handler_param_t handler{};
  handler.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG |
                       UCP_AM_HANDLER_PARAM_FIELD_FLAGS;
  handler.id = kUcxReadRequest;
  handler.cb = &UcxServer::on_request;
  handler.arg = server.get();
  handler.flags = UCP_AM_FLAG_WHOLE_MSG;
  const ucs_status_t st = ucp_worker_set_am_recv_handler(server->worker_->worker(), &handler);
  if (st != UCS_OK) return unavailable("ucx: cannot set the read handler: {}", ucx_error(st));
  server->thread_ = std::thread([s = server.get()] { s->loop(); });
  return server;
}

UcxServer::~UcxServer() {
  stopping_ = true;
  if (thread_.joinable()) {
    worker_->wake();
    thread_.join();
  }
  worker_.reset();  // cancels what is still in flight
  for (Send* send : sends_) {
    if (send->staging != nullptr) region_.copier->free_host(send->staging);
    delete send;
  }
}

UcxServerStats UcxServer::stats() const { return {num_reads_.load(), num_bytes_served_.load(), num_refused_.load()}; }

ucs_status_t UcxServer::on_request(void* arg, const void* header, size_t header_length, void* data, size_t length,
                                   const ucp_am_recv_param_t* param) {
  auto* server = static_cast<UcxServer*>(arg);
  const bool has_reply_ep = (param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP) != 0 && param->reply_ep != nullptr;
  // A request is small and eager; a rendezvous one is dropped unread.
  if (!has_reply_ep || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) != 0 || length > kMaxUcxRequestBytes ||
      server->queue_.size() >= kMaxQueuedRequests) {
    ++server->num_refused_;
    return UCS_OK;
  }
  server->queue_.push_back({std::string(static_cast<const char*>(data), length), param->reply_ep});
  return UCS_OK;
}

void UcxServer::on_send_done(void* request, ucs_status_t status, void* user_data) {
  static_cast<Send*>(user_data)->done = true;
  if (status != UCS_OK && status != UCS_ERR_CANCELED) {
    BATON_LOG_WARN("ucx transport: a KV reply failed: {}", ucx_error(status));
  }
  ucp_request_free(request);
}

void UcxServer::loop() {
  while (!stopping_.load()) {
    worker_->progress_or_sleep(kLoopSliceMs);
    while (!queue_.empty() && answer_next()) {
    }
    reap_sends();
  }
}

bool UcxServer::answer_next() {
  Request& next = queue_.front();
  uint64_t seq = 0;
  auto request = decode_ucx_read_request(next.body.data(), next.body.size(), region_.layout.num_blocks, &seq);
  Status st = request.status();
  if (st.is_ok() && !equal_constant_time(request->access_token, access_token_)) {
    st = permission_denied(
        "ucx read request without this server's access token (fetch the descriptor from its KV agent)");
  }
  if (st.is_ok() && options_.check_grant) {
    st = options_.check_grant(KvGrant{request->request_id, request->lease_token}, &request->runs);
  }
  auto send = std::make_unique<Send>();
  if (st.is_ok()) {
    const bool staged = region_.memory == MemoryKind::kDevice &&
                        (request->checksums || !worker_->supports_cuda_memory());
    const size_t bytes = static_cast<size_t>(count_blocks(request->runs)) * region_.block_bytes();
    if (staged && staging_in_flight_ > 0 && staging_in_flight_ + bytes > options_.max_staging_bytes) return false;
    st = prepare_blocks(*request, *send);
  }
  if (!st.is_ok()) {
    ++num_refused_;
    send->iov.clear();  // an error carries no data (staging already taken is freed with the send)
    send->data_bytes = 0;
  }
  const ucp_ep_h ep = next.reply_ep;
  queue_.pop_front();
  send_reply(ep, seq, st, std::move(send));
  return true;
}

Status UcxServer::prepare_blocks(const UcxReadRequest& request, Send& send) {
  const size_t block_bytes = region_.block_bytes();
  send.data_bytes = static_cast<uint64_t>(count_blocks(request.runs)) * block_bytes;
  send.rendezvous = request.rendezvous;
  const bool device = region_.memory == MemoryKind::kDevice;
  if (device && (request.checksums || !worker_->supports_cuda_memory())) {
    if (region_.copier == nullptr) return unimplemented("ucx transport: device KV region without a staging copier");
    BATON_ASSIGN_OR_RETURN(void* staging, region_.copier->alloc_host(send.data_bytes));
    send.staging = static_cast<uint8_t*>(staging);
    send.staging_bytes = send.data_bytes;
    staging_in_flight_ += send.staging_bytes;
    size_t offset = 0;
    for (const auto& run : request.runs) {
      const size_t bytes = static_cast<size_t>(run.num_blocks) * block_bytes;
      BATON_RETURN_IF_ERROR(region_.copier->to_host(send.staging + offset, region_.block_ptr(run.remote_first), bytes));
      offset += bytes;
    }
    if (request.checksums) {
      for (size_t off = 0; off < send.data_bytes; off += block_bytes) {
        send.sums.push_back(block_checksum(send.staging + off, block_bytes));
      }
    }
    send.iov.push_back({send.staging, send.data_bytes});
  } else {
    for (const auto& run : request.runs) {
      send.iov.push_back({region_.block_ptr(run.remote_first), static_cast<size_t>(run.num_blocks) * block_bytes});
    }
    if (device) send.memory_type = UCS_MEMORY_TYPE_CUDA;
    if (request.checksums) {
      send.sums = run_checksums(static_cast<const uint8_t*>(region_.base), block_bytes, request.runs,
                                /*use_remote=*/true);
    }
  }
  if (request.checksums) send.iov.push_back({send.sums.data(), send.sums.size() * sizeof(uint64_t)});
  return Status::ok();
}

void UcxServer::send_reply(ucp_ep_h ep, uint64_t seq, const Status& status, std::unique_ptr<Send> send) {
  send->header = encode_ucx_reply_header(seq, status);
  ucp_request_param_t params{};
  params.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_DATATYPE |
                        UCP_OP_ATTR_FIELD_MEMORY_TYPE | UCP_OP_ATTR_FIELD_FLAGS;
  params.flags = send->rendezvous && !send->iov.empty() ? UCP_AM_SEND_FLAG_RNDV : 0;
  params.cb.send = &UcxServer::on_send_done;
  params.user_data = send.get();
  // One buffer goes as contiguous data (zero-copy rendezvous where the
  // transport has it); an error reply carries none.
  const bool contiguous = send->iov.size() <= 1;
  params.datatype = contiguous ? ucp_dt_make_contig(1) : ucp_dt_make_iov();
  params.memory_type = send->memory_type;
  if (status.is_ok()) {  // counted before the reader can see the reply
    ++num_reads_;
    num_bytes_served_ += send->data_bytes;
  }
  const void* data = send->iov.empty() ? nullptr : contiguous ? send->iov[0].buffer : send->iov.data();
  const size_t count = send->iov.empty() ? 0 : contiguous ? send->iov[0].length : send->iov.size();
  void* request = ucp_am_send_nbx(ep, kUcxReadReply, send->header.data(), send->header.size(), data, count, &params);
  if (UCS_PTR_IS_ERR(request)) {
    BATON_LOG_WARN("ucx transport: cannot send a KV reply: {}", ucx_error(UCS_PTR_STATUS(request)));
    send->done = true;
  } else if (request == nullptr) {
    send->done = true;
  }
  sends_.insert(send.release());  // freed by reap_sends once done
}

void UcxServer::reap_sends() {
  std::erase_if(sends_, [this](Send* send) {
    if (!send->done) return false;
    if (send->staging != nullptr) {
      region_.copier->free_host(send->staging);
      staging_in_flight_ -= send->staging_bytes;
    }
    delete send;
    return true;
  });
}

}  // namespace baton

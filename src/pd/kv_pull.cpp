#include "pd/kv_pull.h"

#include <algorithm>

#include "common/clock.h"
#include "common/log.h"
#include "kv_transfer/transfer_params.h"

namespace baton {

namespace {

constexpr int64_t kMinRenewIntervalMs = 10;

// Tells the prefill side the pull is over when it leaves scope.
struct DoneOnExit {
  TransferEngine& transfer;
  const std::string& peer;
  const KvGrant& grant;
  ~DoneOnExit() {
    if (Status d = transfer.notify_done(peer, grant); !d.is_ok()) {
      BATON_LOG_WARN("telling '{}' that '{}' is done failed: {}", peer, grant.request_id, d.to_string());
    }
  }
};

}  // namespace

void PullCancel::cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_.store(true);
  if (handle_) handle_->cancel();
}

void PullCancel::attach(std::shared_ptr<TransferHandle> handle) {
  std::lock_guard<std::mutex> lock(mu_);
  handle_ = std::move(handle);
  if (cancelled_.load()) handle_->cancel();
}

KvPull::KvPull(TransferEngine& transfer, std::shared_ptr<const KvSecret> secret, int block_size,
               std::function<int64_t()> wall_now_ms)
    : transfer_(transfer), secret_(std::move(secret)), block_size_(block_size), wall_now_ms_(std::move(wall_now_ms)) {}

Status KvPull::run(const KvLoadRequest& load, PullCancel& cancel, PullCounts* counts) {
  // Checked when the request came (check_transfer_params); again here, so
  // that nothing unchecked is ever acted on.
  BATON_ASSIGN_OR_RETURN(const TransferParams p, TransferParams::parse(load.kv_transfer_params));
  BATON_RETURN_IF_ERROR(p.verify(secret_.get()));
  const KvGrant grant{p.request_id, p.lease_token};
  // First the peer: an incompatible one is refused naming the field. A peer
  // already connected costs no round trip (every request names its own).
  BATON_ASSIGN_OR_RETURN(PeerDescriptor peer, transfer_.peer_for(p.engine_id, p.host, p.port));
  if (peer.engine_id != p.engine_id) {
    return failed_precondition("the KV agent at {}:{} is engine '{}', not '{}' named by kv_transfer_params", p.host,
                               p.port, peer.engine_id, p.engine_id);
  }
  // Whatever happens from here (read or not, failed or not), the prefill
  // side may free its blocks when this returns.
  DoneOnExit done_on_exit{transfer_, peer.engine_id, grant};
  if (p.num_tokens != load.num_prompt_tokens) {
    return invalid_argument("the prefill instance computed {} prompt tokens, this request has {}", p.num_tokens,
                            load.num_prompt_tokens);
  }
  // A lease that ended may have had its blocks reused: never read it.
  if (const int64_t late_ms = wall_now_ms_() - p.lease_expires_ms; late_ms > 0) {
    return failed_precondition("the prefill instance's KV lease of '{}' expired {} ms ago", p.request_id, late_ms);
  }
  // Blocks [0, first) are in the local prefix cache: only [first, end) move.
  const int first = load.num_local_tokens / block_size_;
  const int end = (load.num_tokens_to_load + block_size_ - 1) / block_size_;
  if (end > static_cast<int>(load.local_block_ids.size())) {
    return invalid_argument("the request's {} local blocks cannot hold {} tokens", load.local_block_ids.size(),
                            load.num_tokens_to_load);
  }
  if (p.stream_kv) {
    counts->num_blocks_local_hit = std::min(first, end);
    if (first >= end) return Status::ok();
    BATON_RETURN_IF_ERROR(read_streamed(peer.engine_id, grant, p, load, first, end, cancel));
    counts->num_blocks_pulled = end - first;
    return Status::ok();
  }
  if (end > static_cast<int>(p.block_ids.size())) {
    return invalid_argument("kv_transfer_params holds {} remote blocks; {} tokens need {}", p.block_ids.size(),
                            load.num_tokens_to_load, end);
  }
  counts->num_blocks_local_hit = std::min(first, end);
  if (first >= end) return Status::ok();
  std::vector<int64_t> remote(p.block_ids.begin() + first, p.block_ids.begin() + end);
  std::vector<int64_t> local(load.local_block_ids.begin() + first, load.local_block_ids.begin() + end);
  BATON_RETURN_IF_ERROR(read_renewing(peer.engine_id, grant, p, load, std::move(remote), std::move(local), cancel));
  counts->num_blocks_pulled = end - first;
  return Status::ok();
}

Status KvPull::read_renewing(const std::string& peer, const KvGrant& grant, const TransferParams& p,
                             const KvLoadRequest& load, std::vector<int64_t> remote, std::vector<int64_t> local,
                             PullCancel& cancel) {
  ReadOptions ro;
  ro.request_id = load.request_id;
  ro.grant = grant;
  BATON_ASSIGN_OR_RETURN(auto handle, transfer_.read_blocks(peer, remote, local, ro));
  cancel.attach(handle);
  // Renew the prefill's lease (its length is in the params) at a third of
  // its length while the read runs, and at once if half of it is gone.
  const int64_t renew_ms = std::max(kMinRenewIntervalMs, p.lease_ms / 3);
  if (p.lease_expires_ms - wall_now_ms_() < p.lease_ms / 2) renew(peer, grant);
  Status st;
  for (;;) {
    st = handle->wait(renew_ms);
    if (st.code() != StatusCode::kDeadlineExceeded || handle->poll() != TransferState::kPending) break;
    renew(peer, grant);
  }
  if (!st.is_ok()) return st;
  BATON_RETURN_IF_ERROR(handle->status());
  if (on_read_) BATON_RETURN_IF_ERROR(on_read_(local));
  return Status::ok();
}

namespace {

constexpr int64_t kProgressWaitMs = 200;  // one long poll of the prefill's agent

// A progress answer's new block ids, appended to `remote`.
Status take_progress(const Json& answer, std::vector<int64_t>& remote, bool* finished) {
  auto ids = answer.find("block_ids");
  auto ready = answer.find("num_blocks_ready");
  auto fin = answer.find("finished");
  if (ids == answer.end() || !ids->is_array() || ready == answer.end() || !ready->is_number_integer() ||
      fin == answer.end() || !fin->is_boolean()) {
    return data_loss("the prefill's progress answer lacks block_ids, num_blocks_ready or finished");
  }
  for (const Json& id : *ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0)
      return data_loss("the prefill's progress answer holds a bad block id");
    remote.push_back(id.get<int64_t>());
  }
  if (ready->get<int64_t>() != static_cast<int64_t>(remote.size())) {
    return data_loss("the prefill's progress answer says {} blocks are ready, but {} came", ready->get<int64_t>(),
                     remote.size());
  }
  *finished = fin->get<bool>();
  return Status::ok();
}

}  // namespace

Status KvPull::read_streamed(const std::string& peer, const KvGrant& grant, const TransferParams& p,
                             const KvLoadRequest& load, int first, int end, PullCancel& cancel) {
  std::vector<int64_t> remote;  // the ready blocks' remote ids, prompt order
  bool finished = false;
  int pulled_to = first;  // blocks [first, pulled_to) are read
  Stopwatch since_news;
  for (;;) {
    if (cancel.cancelled()) return aborted("request '{}' was aborted during its streamed KV pull", load.request_id);
    // Each answer also renews the lease; it waits for news up to kProgressWaitMs.
    BATON_ASSIGN_OR_RETURN(Json answer, transfer_.query_progress(peer, grant, static_cast<int64_t>(remote.size()),
                                                                 pulled_to >= end || finished ? 0 : kProgressWaitMs));
    BATON_RETURN_IF_ERROR(take_progress(answer, remote, &finished));
    // Until the prompt is done the running request owns those blocks on the
    // prefill: reads made then count only once an answer that came after them
    // is not an error (a preemption in between stops the lease for good).
    if (pulled_to >= end) return Status::ok();
    const int readable = std::min<int>(end, static_cast<int>(remote.size()));
    if (readable > pulled_to) {
      std::vector<int64_t> from(remote.begin() + pulled_to, remote.begin() + readable);
      std::vector<int64_t> to(load.local_block_ids.begin() + pulled_to, load.local_block_ids.begin() + readable);
      BATON_RETURN_IF_ERROR(read_renewing(peer, grant, p, load, std::move(from), std::move(to), cancel));
      pulled_to = readable;
      since_news.reset();
      if (pulled_to >= end && finished) return Status::ok();
    } else if (finished && readable < end) {
      return data_loss("the prefill finished request '{}' with {} blocks; {} are needed", p.request_id, remote.size(),
                       end);
    } else if (since_news.elapsed_s() * 1000.0 > static_cast<double>(p.lease_ms)) {
      return deadline_exceeded("the prefill of request '{}' made no progress for {} ms", p.request_id, p.lease_ms);
    }
  }
}

Status KvPull::abandon(const Json& params) {
  BATON_ASSIGN_OR_RETURN(const TransferParams p, TransferParams::parse(params));
  BATON_RETURN_IF_ERROR(p.verify(secret_.get()));
  BATON_ASSIGN_OR_RETURN(PeerDescriptor peer, transfer_.peer_for(p.engine_id, p.host, p.port));
  if (peer.engine_id != p.engine_id) {
    return failed_precondition("the KV agent at {}:{} is engine '{}', not '{}'", p.host, p.port, peer.engine_id,
                               p.engine_id);
  }
  return transfer_.notify_done(peer.engine_id, KvGrant{p.request_id, p.lease_token});
}

void KvPull::renew(const std::string& peer, const KvGrant& grant) {
  if (Status r = transfer_.notify_renew(peer, grant); !r.is_ok()) {
    BATON_LOG_WARN("renewing the KV lease of '{}' failed: {}", grant.request_id, r.to_string());
  }
}

}  // namespace baton

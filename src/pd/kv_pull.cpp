#include "pd/kv_pull.h"

#include <algorithm>

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
  if (end > static_cast<int>(p.block_ids.size()) || end > static_cast<int>(load.local_block_ids.size())) {
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
  return st.is_ok() ? handle->status() : st;
}

void KvPull::renew(const std::string& peer, const KvGrant& grant) {
  if (Status r = transfer_.notify_renew(peer, grant); !r.is_ok()) {
    BATON_LOG_WARN("renewing the KV lease of '{}' failed: {}", grant.request_id, r.to_string());
  }
}

}  // namespace baton

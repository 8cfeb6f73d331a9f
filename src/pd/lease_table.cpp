#include "pd/lease_table.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "kv_transfer/kv_secret.h"

namespace baton {

namespace {

constexpr const char* kPreempted = "its blocks were taken back (the prefill was preempted)";

}  // namespace

// Whether the blocks a streamed lease announced final are still the
// request's first ones (a preemption frees and reallocates them).
bool LeaseTable::keeps_ready_blocks(const Lease& lease, const std::vector<int>& block_ids) {
  return static_cast<int64_t>(block_ids.size()) >= lease.num_blocks_ready &&
         std::equal(lease.block_ids.begin(), lease.block_ids.begin() + lease.num_blocks_ready, block_ids.begin());
}

LeaseTable::LeaseTable(int64_t lease_ms, std::function<TimePoint()> now) : lease_ms_(lease_ms), now_(std::move(now)) {}

std::vector<int> LeaseTable::start(const std::string& request_id, std::vector<int> block_ids, std::string token) {
  std::vector<int> replaced;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = leases_.find(request_id); it != leases_.end()) replaced = erase_locked(it);
  stats_.num_blocks_pinned += static_cast<int64_t>(block_ids.size());
  ++stats_.num_leases;
  Lease lease;
  lease.num_blocks_ready = static_cast<int64_t>(block_ids.size());
  lease.block_ids = std::move(block_ids);
  lease.expires = now_() + std::chrono::milliseconds(lease_ms_);
  lease.token = std::move(token);
  leases_[request_id] = std::move(lease);
  return replaced;
}

std::vector<int> LeaseTable::start_streamed(const std::string& request_id, std::string token) {
  std::vector<int> replaced;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = leases_.find(request_id); it != leases_.end()) replaced = erase_locked(it);
  ++stats_.num_leases;
  Lease lease;
  lease.expires = now_() + std::chrono::milliseconds(lease_ms_);
  lease.token = std::move(token);
  lease.owns_blocks = false;
  lease.finished = false;
  leases_[request_id] = std::move(lease);
  return replaced;
}

LeaseTable::Lease* LeaseTable::computing_stream_locked(const std::string& request_id,
                                                       const std::vector<int>& block_ids) {
  auto it = leases_.find(request_id);
  if (it == leases_.end() || !it->second.aborted.empty() || it->second.finished) return nullptr;
  Lease& l = it->second;
  progress_cv_.notify_all();
  if (keeps_ready_blocks(l, block_ids)) return &l;
  // The blocks a reader may have read were freed and reused.
  l.aborted = kPreempted;
  return nullptr;
}

bool LeaseTable::publish(const std::string& request_id, std::vector<int> block_ids, int64_t num_blocks_ready) {
  std::lock_guard<std::mutex> lock(mu_);
  Lease* l = computing_stream_locked(request_id, block_ids);
  if (l == nullptr) return false;
  l->block_ids = std::move(block_ids);
  l->num_blocks_ready = std::clamp<int64_t>(num_blocks_ready, l->num_blocks_ready,
                                            static_cast<int64_t>(l->block_ids.size()));
  return true;
}

bool LeaseTable::finish_streamed(const std::string& request_id, std::vector<int>& block_ids) {
  std::lock_guard<std::mutex> lock(mu_);
  Lease* found = computing_stream_locked(request_id, block_ids);
  if (found == nullptr) return false;
  Lease& l = *found;
  l.block_ids = std::move(block_ids);
  block_ids.clear();
  l.num_blocks_ready = static_cast<int64_t>(l.block_ids.size());
  l.owns_blocks = true;
  l.finished = true;
  stats_.num_blocks_pinned += l.num_blocks_ready;
  progress_cv_.notify_all();
  return true;
}

std::vector<int> LeaseTable::abort_streamed(const std::string& request_id, const std::string& why,
                                            std::vector<int> block_ids) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(request_id);
  if (it == leases_.end()) return block_ids;
  Lease& l = it->second;
  progress_cv_.notify_all();
  if (!l.reader_seen) {
    // Nobody reads it: nothing to wait for.
    ++stats_.num_leases_released;
    std::vector<int> owned = erase_locked(it);
    owned.insert(owned.end(), block_ids.begin(), block_ids.end());
    return owned;
  }
  if (l.aborted.empty()) l.aborted = why;
  if (!l.owns_blocks && !block_ids.empty()) {
    l.block_ids = std::move(block_ids);
    l.owns_blocks = true;
    stats_.num_blocks_pinned += static_cast<int64_t>(l.block_ids.size());
    return {};
  }
  return block_ids;
}

Result<Json> LeaseTable::progress(const KvGrant& grant, int64_t num_blocks_known, int64_t wait_ms) {
  BATON_RETURN_IF_ERROR(check(grant, nullptr));
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = SteadyClock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    auto it = leases_.find(grant.request_id);
    if (it == leases_.end()) return not_found("no KV lease for request '{}' (it ended)", grant.request_id);
    Lease& l = it->second;
    l.reader_seen = true;
    if (!l.aborted.empty()) return aborted("the prefill of request '{}' stopped: {}", grant.request_id, l.aborted);
    if (num_blocks_known > l.num_blocks_ready && l.finished) {
      return invalid_argument("progress request: {} blocks known, the lease of '{}' has {}", num_blocks_known,
                              grant.request_id, l.num_blocks_ready);
    }
    if (l.num_blocks_ready > num_blocks_known || l.finished || closed_ ||
        progress_cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      it = leases_.find(grant.request_id);
      if (it == leases_.end()) return not_found("no KV lease for request '{}' (it ended)", grant.request_id);
      Lease& now = it->second;
      if (!now.aborted.empty())
        return aborted("the prefill of request '{}' stopped: {}", grant.request_id, now.aborted);
      now.expires = now_() + std::chrono::milliseconds(lease_ms_);
      const int64_t from = std::min(num_blocks_known, now.num_blocks_ready);
      Json ids = Json::array();
      for (int64_t i = from; i < now.num_blocks_ready; ++i) ids.push_back(now.block_ids[static_cast<size_t>(i)]);
      return Json{
          {"block_ids", std::move(ids)}, {"num_blocks_ready", now.num_blocks_ready}, {"finished", now.finished}};
    }
  }
}

void LeaseTable::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  progress_cv_.notify_all();
}

Status LeaseTable::check(const KvGrant& grant, const std::vector<BlockRun>* runs) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(grant.request_id);
  Status denied;
  if (it == leases_.end()) {
    denied = not_found("no KV lease for request '{}' (it ended, or never was)", grant.request_id);
  } else if (it->second.token.empty() || !equal_constant_time(it->second.token, grant.lease_token)) {
    denied = permission_denied("the lease token for request '{}' does not match", grant.request_id);
  } else if (runs != nullptr) {
    // Every block asked for must be one of the lease's ready ones (all of
    // them once its prompt is done), and a stopped stream serves nothing.
    if (!it->second.aborted.empty()) {
      denied = aborted("the prefill of request '{}' stopped: {}", grant.request_id, it->second.aborted);
    }
    std::vector<int> owned(it->second.block_ids.begin(), it->second.block_ids.begin() + it->second.num_blocks_ready);
    std::sort(owned.begin(), owned.end());
    for (const BlockRun& run : *runs) {
      for (int64_t b = run.remote_first; b < run.remote_first + run.num_blocks && denied.is_ok(); ++b) {
        if (!std::binary_search(owned.begin(), owned.end(), static_cast<int>(b))) {
          denied = permission_denied("block {} is not one of the KV lease of request '{}'", b, grant.request_id);
        }
      }
      if (!denied.is_ok()) break;
    }
  }
  if (!denied.is_ok()) ++stats_.num_grants_denied;
  return denied;
}

bool LeaseTable::renew(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(request_id);
  if (it == leases_.end()) return false;
  it->second.expires = now_() + std::chrono::milliseconds(lease_ms_);
  ++stats_.num_lease_renewals;
  return true;
}

std::vector<int> LeaseTable::end(const std::string& request_id, LeaseEnd why, bool* found) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(request_id);
  *found = it != leases_.end();
  if (!*found) return {};
  ++(why == LeaseEnd::kDone ? stats_.num_leases_done : stats_.num_leases_released);
  return erase_locked(it);
}

std::vector<std::vector<int>> LeaseTable::expire() {
  std::vector<std::vector<int>> out;
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = now_();
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    BATON_LOG_WARN("KV lease of request '{}' expired unread after {} ms: freeing its {} blocks", it->first, lease_ms_,
                   it->second.owns_blocks ? it->second.block_ids.size() : 0);
    ++stats_.num_lease_expirations;
    auto next = std::next(it);
    std::vector<int> owned = erase_locked(it);
    if (!owned.empty()) out.push_back(std::move(owned));
    it = next;
  }
  return out;
}

bool LeaseTable::has_expired() const {
  std::lock_guard<std::mutex> lock(mu_);
  const TimePoint now = now_();
  return std::any_of(leases_.begin(), leases_.end(), [&](const auto& kv) { return kv.second.expires <= now; });
}

bool LeaseTable::empty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leases_.empty();
}

LeaseStats LeaseTable::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::vector<int> LeaseTable::erase_locked(Map::iterator it) {
  // A streamed lease whose prompt still computes owns nothing: the request does.
  std::vector<int> blocks;
  if (it->second.owns_blocks) blocks = std::move(it->second.block_ids);
  stats_.num_blocks_pinned -= static_cast<int64_t>(blocks.size());
  --stats_.num_leases;
  leases_.erase(it);
  progress_cv_.notify_all();
  return blocks;
}

}  // namespace baton

#include "pd/lease_table.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "kv_transfer/kv_secret.h"

namespace baton {

LeaseTable::LeaseTable(int64_t lease_ms, std::function<TimePoint()> now) : lease_ms_(lease_ms), now_(std::move(now)) {}

std::vector<int> LeaseTable::start(const std::string& request_id, std::vector<int> block_ids, std::string token) {
  std::vector<int> replaced;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = leases_.find(request_id); it != leases_.end()) replaced = erase_locked(it);
  stats_.num_blocks_pinned += static_cast<int64_t>(block_ids.size());
  ++stats_.num_leases;
  leases_[request_id] = Lease{std::move(block_ids), now_() + std::chrono::milliseconds(lease_ms_), std::move(token)};
  return replaced;
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
    // Every block asked for must be one of the lease's.
    std::vector<int> owned = it->second.block_ids;
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
                   it->second.block_ids.size());
    ++stats_.num_lease_expirations;
    auto next = std::next(it);
    out.push_back(erase_locked(it));
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
  std::vector<int> blocks = std::move(it->second.block_ids);
  stats_.num_blocks_pinned -= static_cast<int64_t>(blocks.size());
  --stats_.num_leases;
  leases_.erase(it);
  return blocks;
}

}  // namespace baton

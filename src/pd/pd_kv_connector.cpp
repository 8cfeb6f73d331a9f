#include "pd/pd_kv_connector.h"

#include "pd/decode_kv_connector.h"
#include "pd/prefill_kv_connector.h"

namespace baton {

void PdKvConnector::set_wakeup(std::function<void()> wakeup) {
  std::lock_guard<std::mutex> lock(wakeup_mu_);
  wakeup_ = std::move(wakeup);
}

void PdKvConnector::wake() {
  std::function<void()> w;
  {
    std::lock_guard<std::mutex> lock(wakeup_mu_);
    w = wakeup_;
  }
  if (w) w();
}

Status PdKvConnector::check_options(const KvMemory& memory, const PdConnectorOptions& options, PdRole role) {
  if (options.role != role) {
    return invalid_argument("a {} KV connector needs --role {}", pd_role_name(role), pd_role_name(role));
  }
  if (memory.base == nullptr) return failed_precondition("KV connector: the KV cache is not allocated");
  if (options.lease_ms <= 0) return invalid_argument("--kv-lease-ms must be positive, got {}", options.lease_ms);
  if (options.num_loaders < 1) return invalid_argument("KV connector: num_loaders must be >= 1");
  if (options.engine_id.empty()) return invalid_argument("KV connector: empty engine id");
  return Status::ok();
}

Result<std::shared_ptr<PdKvConnector>> create_pd_connector(const KvMemory& memory, PdConnectorOptions options,
                                                           std::unique_ptr<Transport> transport) {
  switch (options.role) {
    case PdRole::kPrefill: {
      BATON_ASSIGN_OR_RETURN(auto c, PrefillKvConnector::create(memory, std::move(options), std::move(transport)));
      return std::shared_ptr<PdKvConnector>(std::move(c));
    }
    case PdRole::kDecode: {
      BATON_ASSIGN_OR_RETURN(auto c, DecodeKvConnector::create(memory, std::move(options), std::move(transport)));
      return std::shared_ptr<PdKvConnector>(std::move(c));
    }
    case PdRole::kAgg: break;
  }
  return invalid_argument("an agg instance needs no KV connector");
}

}  // namespace baton

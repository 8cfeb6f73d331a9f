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

// An instance's role in PD disaggregation, and the decode side's policy when
// a KV pull fails; the names are the `baton serve` flag values.
#pragma once

#include <string>

#include "common/status.h"
#include "engine/kv_connector.h"

namespace baton {

enum class PdRole { kAgg, kPrefill, kDecode };
Result<PdRole> parse_pd_role(const std::string& name);  // agg|prefill|decode
const char* pd_role_name(PdRole role);
Result<KvLoadFailurePolicy> parse_kv_load_failure_policy(const std::string& name);  // fail|recompute

}  // namespace baton

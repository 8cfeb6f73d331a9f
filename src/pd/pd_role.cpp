#include "pd/pd_role.h"

namespace baton {

Result<PdRole> parse_pd_role(const std::string& name) {
  if (name == "agg") return PdRole::kAgg;
  if (name == "prefill") return PdRole::kPrefill;
  if (name == "decode") return PdRole::kDecode;
  return invalid_argument("unknown --role '{}' (expected agg, prefill or decode)", name);
}

const char* pd_role_name(PdRole role) {
  switch (role) {
    case PdRole::kAgg: return "agg";
    case PdRole::kPrefill: return "prefill";
    case PdRole::kDecode: return "decode";
  }
  return "?";
}

Result<KvLoadFailurePolicy> parse_kv_load_failure_policy(const std::string& name) {
  if (name == "fail") return KvLoadFailurePolicy::kFail;
  if (name == "recompute") return KvLoadFailurePolicy::kRecompute;
  return invalid_argument("unknown --kv-load-failure-policy '{}' (expected fail or recompute)", name);
}

}  // namespace baton

#include "kv_transfer/ucx_inventory.h"

#include <uct/api/uct.h>

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace baton {

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// The entries of a UCX_TLS-style list ("rc,ud"), empty ones dropped.
std::vector<std::string> tls_entries(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = std::min(s.find(',', start), s.size());
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Whether one UCX_TLS entry names `transport` (itself, or an alias of UCX's).
bool tls_entry_matches(const std::string& entry, const std::string& transport) {
  if (entry == "all" || entry == transport) return true;
  const std::string cls = ucx_transport_class(transport);
  if (entry == "sm" || entry == "shm") return cls == "sm";
  if (entry == "mm") return transport == "posix" || transport == "sysv" || transport == "xpmem";
  if (entry == "ib") return cls == "rdma";
  if (entry == "cuda") return starts_with(transport, "cuda") || transport == "gdr_copy";
  if (entry == "rc" || entry == "dc" || entry == "ud") return starts_with(transport, (entry + "_").c_str());
  return false;
}

void query_component(uct_component_h component, std::vector<UcxResource>& out) {
  uct_component_attr_t attr{};
  attr.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCE_COUNT;
  if (uct_component_query(component, &attr) != UCS_OK || attr.md_resource_count == 0) return;
  std::vector<uct_md_resource_desc_t> mds(attr.md_resource_count);
  attr.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCES;
  attr.md_resources = mds.data();
  if (uct_component_query(component, &attr) != UCS_OK) return;
  for (const auto& md_desc : mds) {
    uct_md_config_t* config = nullptr;
    if (uct_md_config_read(component, nullptr, nullptr, &config) != UCS_OK) continue;
    uct_md_h md = nullptr;
    const ucs_status_t st = uct_md_open(component, md_desc.md_name, config, &md);
    uct_config_release(config);
    if (st != UCS_OK) continue;
    uct_tl_resource_desc_t* resources = nullptr;
    unsigned count = 0;
    if (uct_md_query_tl_resources(md, &resources, &count) == UCS_OK) {
      for (unsigned i = 0; i < count; ++i) {
        out.push_back({resources[i].tl_name, resources[i].dev_name, ucx_transport_class(resources[i].tl_name)});
      }
      uct_release_tl_resource_list(resources);
    }
    uct_md_close(md);
  }
}

}  // namespace

std::string ucx_transport_class(const std::string& t) {
  if (starts_with(t, "rc_") || starts_with(t, "dc_") || starts_with(t, "ud_") || t == "rc" || t == "ud") return "rdma";
  if (t == "posix" || t == "sysv" || t == "cma" || t == "knem" || t == "xpmem") return "sm";
  if (t == "tcp") return "tcp";
  if (starts_with(t, "cuda") || t == "gdr_copy" || starts_with(t, "rocm")) return "gpu";
  if (t == "self") return "self";
  return "other";
}

Result<std::vector<UcxResource>> list_ucx_resources() {
  uct_component_h* components = nullptr;
  unsigned count = 0;
  const ucs_status_t st = uct_query_components(&components, &count);
  if (st != UCS_OK) return unavailable("ucx: cannot list UCX's components: {}", ucs_status_string(st));
  std::vector<UcxResource> out;
  for (unsigned i = 0; i < count; ++i) query_component(components[i], out);
  uct_release_component_list(components);
  return out;
}

bool ucx_tls_allows(const std::string& tls, const std::string& transport) {
  if (tls.empty()) return true;
  const bool negate = tls[0] == '^';
  const auto entries = tls_entries(negate ? tls.substr(1) : tls);
  const bool named = std::any_of(entries.begin(), entries.end(),
                                 [&](const std::string& e) { return tls_entry_matches(e, transport); });
  return negate ? !named : named;
}

Result<KvRequirement> check_kv_require(const std::string& kv_transport, const std::string& require,
                                       const std::string& ucx_tls_env, const std::vector<UcxResource>& resources) {
  if (require != "rdma" && require != "sm" && require != "tcp") {
    return invalid_argument("--kv-require '{}': not a transport class (one of {})", require, kKvRequireClasses);
  }
  if (kv_transport != "ucx") {
    const std::string cls = kv_transport == "tcp"                              ? "tcp"
                            : kv_transport == "shm" || kv_transport == "local" ? "sm"
                                                                               : kv_transport;
    if (cls == require) return KvRequirement{};
    return failed_precondition("--kv-require {}: --kv-transport {} moves KV over {}, not {} (use --kv-transport ucx{})",
                               require, kv_transport, cls, require,
                               require == "rdma" ? " on hosts with RDMA NICs" : "");
  }
  std::vector<std::string> found, usable;
  std::set<std::string> class_tls;
  for (const auto& r : resources) {
    if (r.kv_class == "self") continue;
    found.push_back(fmt::format("{}/{}", r.transport, r.device));
    if (!ucx_tls_allows(ucx_tls_env, r.transport)) continue;
    usable.push_back(found.back());
    if (r.kv_class == require || r.kv_class == "gpu") class_tls.insert(r.transport);
  }
  const bool has_class = std::any_of(resources.begin(), resources.end(), [&](const UcxResource& r) {
    return r.kv_class == require && ucx_tls_allows(ucx_tls_env, r.transport);
  });
  if (!has_class) {
    return failed_precondition(
        "--kv-require {}: UCX on this host has no {} transport{}; it found: {}{}", require, require,
        ucx_tls_env.empty() ? "" : " allowed by UCX_TLS=" + ucx_tls_env,
        found.empty() ? "nothing" : fmt::format("{}", fmt::join(found, ", ")),
        usable.size() == found.size() ? "" : fmt::format(" (UCX_TLS allows: {})", fmt::join(usable, ", ")));
  }
  KvRequirement out;
  if (ucx_tls_env.empty()) out.ucx_tls = fmt::format("{}", fmt::join(class_tls, ","));
  return out;
}

}  // namespace baton

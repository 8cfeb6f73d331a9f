#include "bench/prefix_cache_check.h"

#include <unordered_set>

#include <fmt/format.h>

#include "common/metrics_text.h"
#include "http/http_client.h"

namespace baton::bench {

bool workload_shares_prefixes(const Workload& workload) {
  std::unordered_set<uint64_t> seen;
  for (const auto& r : workload.requests) {
    std::unordered_set<uint64_t> own;  // a key repeated inside one prompt is no shared prefix
    for (const auto& seg : r.prompt) own.insert(seg.key);
    for (uint64_t key : own) {
      if (!seen.insert(key).second) return true;
    }
  }
  return false;
}

std::optional<double> read_prefix_cache_hits(const std::vector<std::string>& origins) {
  std::optional<double> total;
  for (const auto& origin : origins) {
    auto resp = http::fetch(origin + "/metrics", "GET", {}, 5.0);
    if (!resp.is_ok() || resp->status != 200) continue;
    auto series = sum_metrics_by_name(resp->body);
    if (!series.is_ok()) continue;
    for (const auto& [name, value] : *series) {
      if (name.ends_with("prefix_cache_hits_total")) total = total.value_or(0) + value;
    }
  }
  return total;
}

PrefixCacheCheck check_prefix_cache(std::optional<double> before, std::optional<double> after,
                                    int64_t prompt_tokens_sent, bool expected) {
  PrefixCacheCheck c;
  c.expected = expected;
  if (!before || !after) return c;
  c.checked = true;
  c.hit_tokens = std::max(0.0, *after - *before);
  if (expected || c.hit_tokens <= 0) return c;
  c.warning = fmt::format(
      "the server reported {:.0f} prefix-cache hit tokens{} on a workload whose prompts share no prefix: it had seen "
      "these prompts before (an earlier run with the same --seed, or another client sending them), so the latencies "
      "above are lower than fresh prompts get. Rerun without --seed (a fresh seed each run) or with another one",
      c.hit_tokens,
      prompt_tokens_sent > 0
          ? fmt::format(" ({:.0f}% of the {} prompt tokens sent)",
                        100 * c.hit_tokens / static_cast<double>(prompt_tokens_sent), prompt_tokens_sent)
          : std::string());
  return c;
}

Json PrefixCacheCheck::to_json() const {
  return Json{{"checked", checked},
              {"hit_tokens", checked ? Json(hit_tokens) : Json(nullptr)},
              {"expected", expected},
              {"warning", warning}};
}

}  // namespace baton::bench

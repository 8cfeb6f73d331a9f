// Did the server serve a run's prompts from its prefix cache? A workload whose
// prompts share no prefix (random, an Azure trace) should find none: hits
// mean the server had seen these very prompts before (an earlier run with the
// same --seed), and its latencies are then lower than fresh prompts get. The
// bench reads the servers' counter *prefix_cache_hits_total (baton serve's
// baton:prefix_cache_hits_total, in prompt tokens) on their /metrics before
// and after each run, and says so when it rose where it should not have.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/workload.h"
#include "common/json.h"

namespace baton::bench {

struct PrefixCacheCheck {
  bool checked = false;   // some server reported the counter before and after the run
  double hit_tokens = 0;  // its rise over the run, summed over the servers
  bool expected = false;  // the workload's prompts share prefixes (prefix, multiturn, Mooncake hash ids)
  std::string warning;    // hits where none were expected: what they mean ("" otherwise)
  Json to_json() const;
};

// Whether any two prompts of the workload share a segment (and so a prefix the
// server can cache): two requests with one key in common.
bool workload_shares_prefixes(const Workload& workload);

// The sum over `origins` (http://HOST:PORT) of every series whose name ends in
// "prefix_cache_hits_total" on their /metrics; nullopt when none answers with
// such a series.
std::optional<double> read_prefix_cache_hits(const std::vector<std::string>& origins);

// The check of one run: counter values before and after (nullopt: not read),
// the prompt tokens the run sent, and whether the workload shares prefixes.
PrefixCacheCheck check_prefix_cache(std::optional<double> before, std::optional<double> after,
                                    int64_t prompt_tokens_sent, bool expected);

}  // namespace baton::bench

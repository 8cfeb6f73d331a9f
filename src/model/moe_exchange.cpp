#include "model/moe_exchange.h"

#include <algorithm>
#include <cmath>

namespace baton {
namespace {

constexpr double kActivationBytes = 2.0;  // bf16

// log C(n, r); -inf when r is outside [0, n].
double log_choose(int n, int r) {
  if (r < 0 || r > n) return -INFINITY;
  return std::lgamma(n + 1.0) - std::lgamma(r + 1.0) - std::lgamma(n - r + 1.0);
}

// P(the rank holds at least one of the token's experts).
double rank_hit(const ModelConfig& c, int ranks) {
  const int ne = c.num_experts, k = c.num_experts_per_tok;
  const int groups = c.deepseek_moe.n_group, chosen_groups = c.deepseek_moe.topk_group;
  if (groups <= 1 || chosen_groups >= groups || groups % ranks != 0) return probability_rank_hit(ne, ne / ranks, k);
  // Grouped routing: topk_group of the n_group groups, then k experts among
  // theirs; the rank holds n_group / N whole groups, of which g are chosen.
  const int per_group = ne / groups, held_groups = groups / ranks, pool = chosen_groups * per_group;
  double hit = 0.0;
  for (int g = 0; g <= std::min(held_groups, chosen_groups); ++g) {
    const double p_g = std::exp(log_choose(held_groups, g) + log_choose(groups - held_groups, chosen_groups - g) -
                                log_choose(groups, chosen_groups));
    if (p_g > 0.0) hit += p_g * probability_rank_hit(pool, g * per_group, k);
  }
  return hit;
}

}  // namespace

double probability_rank_hit(int pool, int held, int k) {
  if (held <= 0 || k <= 0 || pool <= 0) return 0.0;
  if (pool - held < k) return 1.0;
  return 1.0 - std::exp(log_choose(pool - held, k) - log_choose(pool, k));
}

MoeExchangeBytes moe_exchange_bytes(const ModelConfig& c, int64_t tokens, int ranks) {
  MoeExchangeBytes b;
  b.ranks = ranks;
  b.tokens = tokens;
  for (int layer = 0; layer < c.num_layers; ++layer) b.moe_layers += c.is_moe_layer(layer) ? 1 : 0;
  if (!c.is_moe() || ranks <= 1 || tokens <= 0 || c.num_experts % ranks != 0) return b;
  const double n = ranks, layer_bytes = static_cast<double>(tokens) * c.hidden_size * kActivationBytes;  // [T, h]
  b.remote_ranks_per_token = (n - 1.0) * rank_hit(c, ranks);
  b.all_reduce = b.moe_layers * 2.0 * (n - 1.0) / n * layer_bytes;
  b.all_gather_reduce_scatter = b.moe_layers * 2.0 * (n - 1.0) / n * layer_bytes;
  // Each rank's T/N tokens out to their remote ranks and back.
  b.all_to_all = b.moe_layers * 2.0 * b.remote_ranks_per_token * layer_bytes / n;
  return b;
}

}  // namespace baton

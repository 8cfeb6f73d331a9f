// The CPU operators DeepSeek-V3 adds (cpu_ops.h): the latent KV write,
// grouped sigmoid routing and strided (interleaved) RoPE.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "common/check.h"

namespace baton {

void write_latent(const float* rows, const int64_t* slot_mapping, int64_t num_tokens, const KvLayout& layout, int layer,
                  void* kv_cache) {
  BATON_CHECK(layout.is_latent(), "write_latent over a per-head K/V layout");
  const int64_t width = layout.token_elems();  // [kv_lora_rank + qk_rope_head_dim]
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    const int64_t block = slot / layout.block_size;
    const int offset = static_cast<int>(slot % layout.block_size);
    store_kv_row(rows + t * width, width, layout.dtype, kv_cache, layout.offset(block, layer, 0, offset));
  }
}

void grouped_topk_route(const float* router_logits, const float* correction_bias, int64_t num_tokens,
                        const GroupedTopkArgs& a, int32_t* topk_ids, float* topk_weights) {
  const int ne = a.num_experts, per_group = a.num_experts / a.n_group;
  BATON_CHECK(per_group * a.n_group == ne && per_group >= 2, "{} experts in {} groups", ne, a.n_group);
  std::vector<float> scores(ne), biased(ne), group_score(a.n_group);
  std::vector<int32_t> order(ne), groups(a.n_group);
  constexpr float kMasked = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* l = router_logits + t * ne;  // [num_experts]
    for (int e = 0; e < ne; ++e) {
      scores[e] = 1.0f / (1.0f + std::exp(-l[e]));
      biased[e] = scores[e] + correction_bias[e];
    }
    for (int g = 0; g < a.n_group; ++g) {  // a group's score: its two best biased scores
      const float* b = biased.data() + g * per_group;
      float best = kMasked, second = kMasked;
      for (int i = 0; i < per_group; ++i) {
        if (b[i] > best) {
          second = best;
          best = b[i];
        } else if (b[i] > second) {
          second = b[i];
        }
      }
      group_score[g] = best + second;
      groups[g] = g;
    }
    std::partial_sort(groups.begin(), groups.begin() + a.topk_group, groups.end(), [&](int32_t x, int32_t y) {
      return group_score[x] != group_score[y] ? group_score[x] > group_score[y] : x < y;
    });
    std::vector<bool> kept(a.n_group, false);
    for (int i = 0; i < a.topk_group; ++i) kept[groups[i]] = true;
    for (int e = 0; e < ne; ++e) {
      if (!kept[e / per_group]) biased[e] = kMasked;  // as vLLM and DeepSeek's reference do
      order[e] = e;
    }
    std::partial_sort(order.begin(), order.begin() + a.top_k, order.end(),
                      [&](int32_t x, int32_t y) { return biased[x] != biased[y] ? biased[x] > biased[y] : x < y; });
    float chosen = 0.0f;
    for (int j = 0; j < a.top_k; ++j) chosen += scores[order[j]];
    const float denom = a.renormalize ? chosen + 1e-20f : 1.0f;
    for (int j = 0; j < a.top_k; ++j) {
      topk_ids[t * a.top_k + j] = order[j];
      topk_weights[t * a.top_k + j] = scores[order[j]] / denom * a.routed_scaling_factor;
    }
  }
}

void apply_rope_strided(float* x, int64_t num_tokens, int num_heads, int64_t head_stride, int rotary_dim,
                        bool interleaved, const float* cos_sin) {
  const int half = rotary_dim / 2;
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* c = cos_sin + t * 2 * half;  // [half]
    const float* s = c + half;                // [half]
    for (int h = 0; h < num_heads; ++h) {
      float* v = x + (t * num_heads + h) * head_stride;  // [rotary_dim] at the head's start
      for (int i = 0; i < half; ++i) {
        const int ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + half;
        const float a = v[ia], b = v[ib];
        v[ia] = a * c[i] - b * s[i];
        v[ib] = b * c[i] + a * s[i];
      }
    }
  }
}

}  // namespace baton

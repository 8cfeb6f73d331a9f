// The elementwise, normalisation, RoPE, attention and routing operators of
// cpu_ops.h (matmul lives in cpu_matmul.cpp).
#include "backend/cpu/cpu_ops.h"

#include "model/yarn.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>

#include "common/check.h"
#include "common/thread_pool.h"
#include "kv/kv_cache_dtype.h"
#include "model/fp8_quantization.h"

namespace baton {

void rmsnorm(const float* x, const float* weight, int64_t num_rows, int64_t dim, float eps, float* out) {
  for (int64_t r = 0; r < num_rows; ++r) {
    const float* xr = x + r * dim;  // [dim]
    float* o = out + r * dim;       // [dim]
    double sum_sq = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum_sq += static_cast<double>(xr[i]) * xr[i];
    const float variance = static_cast<float>(sum_sq / static_cast<double>(dim));
    const float inv = 1.0f / std::sqrt(variance + eps);
    for (int64_t i = 0; i < dim; ++i) o[i] = weight[i] * (xr[i] * inv);
  }
}

std::vector<float> rope_inv_freq(int head_dim, double theta, const std::optional<RopeScaling>& scaling) {
  BATON_CHECK(head_dim > 0 && head_dim % 2 == 0, "head_dim {} must be even", head_dim);
  const int half = head_dim / 2;
  std::vector<float> inv(half);  // [head_dim / 2]
  const double base = static_cast<float>(theta);
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float pw = static_cast<float>(std::pow(base, static_cast<double>(exponent)));
    inv[i] = 1.0f / pw;
  }
  if (!scaling.has_value()) return inv;
  if (scaling->rope_type == "yarn") return yarn_inv_freq(head_dim, theta, *scaling);
  // HF _compute_llama3_parameters.
  const double factor = scaling->factor;
  const double low = scaling->low_freq_factor;
  const double high = scaling->high_freq_factor;
  const double old_len = scaling->original_max_position_embeddings;
  const double low_freq_wavelen = old_len / low;
  const double high_freq_wavelen = old_len / high;
  for (int i = 0; i < half; ++i) {
    const double f = inv[i];
    const double wavelen = 2.0 * std::numbers::pi / f;
    double scaled = wavelen > low_freq_wavelen ? f / factor : f;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (medium) {
      const double smooth = (old_len / wavelen - low) / (high - low);
      scaled = (1.0 - smooth) * scaled / factor + smooth * scaled;
    }
    inv[i] = static_cast<float>(scaled);
  }
  return inv;
}

void rope_cos_sin(const int32_t* positions, int64_t num_tokens, const float* inv_freq, int half_dim, float* cos_sin) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float pos = static_cast<float>(positions[t]);
    float* c = cos_sin + t * 2 * half_dim;  // [half_dim]
    float* s = c + half_dim;                // [half_dim]
    for (int i = 0; i < half_dim; ++i) {
      const float angle = pos * inv_freq[i];
      c[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      s[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

void apply_rope_cos_sin(float* x, int64_t num_tokens, int num_heads, int head_dim, const float* cos_sin) {
  const int half = head_dim / 2;
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* c = cos_sin + t * 2 * half;  // [half]
    const float* s = c + half;                // [half]
    for (int h = 0; h < num_heads; ++h) {
      float* v = x + (t * num_heads + h) * head_dim;  // [head_dim]
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

void apply_rope(float* x, int64_t num_tokens, int num_heads, int head_dim, const int32_t* positions,
                const float* inv_freq) {
  std::vector<float> cos_sin(static_cast<size_t>(num_tokens) * head_dim);  // [num_tokens, 2, head_dim / 2]
  rope_cos_sin(positions, num_tokens, inv_freq, head_dim / 2, cos_sin.data());
  apply_rope_cos_sin(x, num_tokens, num_heads, head_dim, cos_sin.data());
}

void silu_mul(const float* gate_up, int64_t num_tokens, int64_t inter, float* out) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* g = gate_up + t * 2 * inter;  // [2 * inter]: gate then up
    const float* u = g + inter;
    float* o = out + t * inter;  // [inter]
    for (int64_t j = 0; j < inter; ++j) o[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
  }
}

void store_kv_row(const float* row, int64_t count, DType dtype, void* kv_cache, int64_t elem_offset) {
  if (dtype != DType::kF8E4M3) {
    std::memcpy(static_cast<float*>(kv_cache) + elem_offset, row, count * sizeof(float));
    return;
  }
  uint8_t* out = static_cast<uint8_t*>(kv_cache) + elem_offset;
  for (int64_t i = 0; i < count; ++i) out[i] = float_to_fp8_e4m3(row[i] / kKvFp8Scale);
}

const float* load_kv_row(const void* kv_cache, DType dtype, int64_t elem_offset, int64_t count, float* scratch) {
  if (dtype != DType::kF8E4M3) return static_cast<const float*>(kv_cache) + elem_offset;
  static const std::array<float, 256> kDecoded = [] {  // every e4m3 code's value, scaled
    std::array<float, 256> t{};
    for (int b = 0; b < 256; ++b) t[static_cast<size_t>(b)] = fp8_e4m3_to_float(static_cast<uint8_t>(b)) * kKvFp8Scale;
    return t;
  }();
  const uint8_t* in = static_cast<const uint8_t*>(kv_cache) + elem_offset;
  for (int64_t i = 0; i < count; ++i) scratch[i] = kDecoded[in[i]];
  return scratch;
}

void write_kv(const float* k, const float* v, const int64_t* slot_mapping, int64_t num_tokens, const KvLayout& layout,
              int layer, void* kv_cache) {
  const int64_t row = layout.token_elems();  // [num_kv_heads * head_dim]
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    const int64_t block = slot / layout.block_size;
    const int offset = static_cast<int>(slot % layout.block_size);
    store_kv_row(k + t * row, row, layout.dtype, kv_cache, layout.offset(block, layer, 0, offset));
    store_kv_row(v + t * row, row, layout.dtype, kv_cache, layout.offset(block, layer, 1, offset));
  }
}

void paged_attention(const PagedAttentionArgs& a, float* out, ThreadPool* pool) {
  const KvLayout& L = a.layout;
  const int head_dim = L.head_dim;                                    // key width (q rows)
  const int value_dim = L.is_latent() ? L.kv_lora_rank : L.head_dim;  // out rows
  const int value_plane = L.is_latent() ? 0 : 1;                      // the latent row is its own value
  const int group = a.num_heads / L.num_kv_heads;                     // query heads per KV head
  BATON_CHECK(group * L.num_kv_heads == a.num_heads, "{} heads over {} kv heads", a.num_heads, L.num_kv_heads);
  // Work items: (tile of up to kTile consecutive tokens of one sequence, KV
  // head). Each K/V row is loaded once per tile for all its query rows
  // (tokens x heads of the group); every output keeps its own sequential
  // arithmetic, so tiling does not change results.
  constexpr int64_t kTile = 8;
  std::vector<std::pair<int64_t, int64_t>> tiles;  // [t0, t1)
  for (int64_t t = 0; t < a.num_tokens;) {
    int64_t e = t + 1;
    while (e < a.num_tokens && e - t < kTile && a.seq_of_token[e] == a.seq_of_token[t]) ++e;
    tiles.emplace_back(t, e);
    t = e;
  }
  auto body = [&](int64_t begin, int64_t end) {
    std::vector<float> scores;                 // [rows, max_context]
    std::vector<float> row_max, row_sum;       // [rows]
    std::vector<float> dequantised(head_dim);  // one K or V row of an FP8 cache
    for (int64_t item = begin; item < end; ++item) {
      // Not a structured binding: clang 14 (the sanitizer and fuzz builds) cannot capture one in a lambda.
      const int64_t t0 = tiles[item / L.num_kv_heads].first;
      const int64_t t1 = tiles[item / L.num_kv_heads].second;
      const int kvh = static_cast<int>(item % L.num_kv_heads);
      const int32_t* table = a.block_tables + static_cast<int64_t>(a.seq_of_token[t0]) * a.max_blocks_per_seq;
      const int rows = static_cast<int>(t1 - t0) * group;  // row r: token t0 + r / group, head kvh * group + r % group
      int max_context = 0;
      for (int64_t t = t0; t < t1; ++t) max_context = std::max(max_context, a.positions[t] + 1);
      scores.resize(static_cast<size_t>(rows) * max_context);
      row_max.assign(rows, -std::numeric_limits<float>::infinity());
      row_sum.assign(rows, 0.0f);
      auto q_of = [&](int r) {
        return a.q + ((t0 + r / group) * a.num_heads + kvh * group + r % group) * head_dim;  // [head_dim]
      };
      auto out_of = [&](int r) {
        return out + ((t0 + r / group) * a.num_heads + kvh * group + r % group) * value_dim;  // [value_dim]
      };
      auto context_of = [&](int r) { return a.positions[t0 + r / group] + 1; };
      for (int p = 0; p < max_context; ++p) {
        const int64_t block = table[p / L.block_size];
        const float* k = load_kv_row(a.kv_cache, L.dtype,
                                     L.offset(block, a.layer, 0, p % L.block_size) + kvh * head_dim, head_dim,
                                     dequantised.data());
        for (int r = 0; r < rows; ++r) {
          if (p >= context_of(r)) continue;
          const float s = dot_f32(q_of(r), k, head_dim) * a.scale;
          scores[static_cast<size_t>(r) * max_context + p] = s;
          row_max[r] = std::max(row_max[r], s);
        }
      }
      for (int r = 0; r < rows; ++r) {
        float* sr = scores.data() + static_cast<size_t>(r) * max_context;
        const int context = context_of(r);
        float sum = 0.0f;
        for (int p = 0; p < context; ++p) {
          sr[p] = std::exp(sr[p] - row_max[r]);
          sum += sr[p];
        }
        row_sum[r] = sum;
        float* o = out_of(r);
        std::fill(o, o + value_dim, 0.0f);
      }
      for (int p = 0; p < max_context; ++p) {
        const int64_t block = table[p / L.block_size];
        const float* v = load_kv_row(a.kv_cache, L.dtype,
                                     L.offset(block, a.layer, value_plane, p % L.block_size) + kvh * head_dim,
                                     value_dim, dequantised.data());
        for (int r = 0; r < rows; ++r) {
          if (p >= context_of(r)) continue;
          const float w = scores[static_cast<size_t>(r) * max_context + p];
          float* o = out_of(r);
          for (int d = 0; d < value_dim; ++d) o[d] += w * v[d];
        }
      }
      for (int r = 0; r < rows; ++r) {
        const float inv = 1.0f / row_sum[r];
        float* o = out_of(r);
        for (int d = 0; d < value_dim; ++d) o[d] *= inv;
      }
    }
  };
  const int64_t items = static_cast<int64_t>(tiles.size()) * L.num_kv_heads;
  if (pool == nullptr) {
    body(0, items);
    return;
  }
  pool->parallel_for(items, body, 1);
}

void moe_route(const float* router_logits, int64_t num_tokens, int num_experts, int top_k, bool renormalize,
               int32_t* topk_ids, float* topk_weights) {
  std::vector<float> probs(num_experts);  // [num_experts]
  std::vector<int32_t> order(num_experts);
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* l = router_logits + t * num_experts;  // [num_experts]
    const float mx = *std::max_element(l, l + num_experts);
    float sum = 0.0f;
    for (int e = 0; e < num_experts; ++e) {
      probs[e] = std::exp(l[e] - mx);
      sum += probs[e];
    }
    for (int e = 0; e < num_experts; ++e) probs[e] /= sum;
    for (int e = 0; e < num_experts; ++e) order[e] = e;
    std::partial_sort(order.begin(), order.begin() + top_k, order.end(),
                      [&](int32_t x, int32_t y) { return probs[x] != probs[y] ? probs[x] > probs[y] : x < y; });
    float chosen = 0.0f;
    for (int j = 0; j < top_k; ++j) chosen += probs[order[j]];
    for (int j = 0; j < top_k; ++j) {
      topk_ids[t * top_k + j] = order[j];
      topk_weights[t * top_k + j] = renormalize ? probs[order[j]] / chosen : probs[order[j]];
    }
  }
}

void embedding(const float* table, int64_t dim, const int32_t* ids, int64_t num_ids, float* out) {
  for (int64_t t = 0; t < num_ids; ++t)
    std::memcpy(out + t * dim, table + static_cast<int64_t>(ids[t]) * dim, dim * sizeof(float));
}

void embedding_packed(const PackedWeight& table, const int32_t* ids, int64_t num_ids, float* out) {
  constexpr int kPanel = PackedWeight::kPanelRows;
  const int64_t dim = table.in;
  for (int64_t t = 0; t < num_ids; ++t) {
    const float* src = table.data.data() + (ids[t] / kPanel) * dim * kPanel + ids[t] % kPanel;  // stride 16
    float* dst = out + t * dim;                                                                 // [dim]
    for (int64_t k = 0; k < dim; ++k) dst[k] = src[k * kPanel];
  }
}

}  // namespace baton

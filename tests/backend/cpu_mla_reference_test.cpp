// The CPU backend's deepseek_v3 forward (absorbed MLA over the paged latent
// cache) against a plain re-implementation of HF's expanded form written
// here (K-nope and V expanded from the latent per token, causal softmax,
// HF's de-interleave + rotate_half RoPE, grouped sigmoid routing, shared
// experts), on random checkpoints whose widths all differ (qk_nope != v_head
// != kv_lora_rank), with q_lora_rank null and set, and with a yarn
// attention factor != 1 on cos/sin.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/fp32_random_checkpoint.h"
#include "backend/step_builder.h"
#include "model/presets.h"
#include "model/yarn.h"

namespace baton {
namespace {

namespace fs = std::filesystem;
using Vec = std::vector<double>;

struct Reference {
  const Checkpoint& ckpt;
  const ModelConfig& c;

  Vec weight(const std::string& name) const {
    auto t = ckpt.tensor(name);
    EXPECT_TRUE(t.is_ok()) << name;
    std::vector<float> f = t->to_float();
    return Vec(f.begin(), f.end());
  }
  // y[t, o] = sum_i x[t, i] * w[o, i]
  static Vec linear(const Vec& x, int64_t rows, const Vec& w, int64_t out) {
    const int64_t in = static_cast<int64_t>(x.size()) / rows;
    Vec y(rows * out, 0.0);
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t o = 0; o < out; ++o)
        for (int64_t i = 0; i < in; ++i) y[t * out + o] += x[t * in + i] * w[o * in + i];
    return y;
  }
  Vec rmsnorm(const Vec& x, int64_t dim, const Vec& w) const {
    Vec y(x.size());
    for (size_t r = 0; r < x.size() / dim; ++r) {
      double ms = 0;
      for (int64_t i = 0; i < dim; ++i) ms += x[r * dim + i] * x[r * dim + i];
      const double inv = 1.0 / std::sqrt(ms / dim + c.rms_norm_eps);
      for (int64_t i = 0; i < dim; ++i) y[r * dim + i] = x[r * dim + i] * inv * w[i];
    }
    return y;
  }
  // HF apply_rotary_pos_emb_interleave on `rope` values at p.
  void rope(double* p, int pos, const std::vector<float>& inv_freq, double attention_factor) const {
    const int half = c.mla.qk_rope_head_dim / 2;
    Vec d(2 * half);
    for (int i = 0; i < half; ++i) {
      d[i] = p[2 * i];
      d[i + half] = p[2 * i + 1];
    }
    for (int i = 0; i < half; ++i) {
      const double angle = static_cast<double>(static_cast<float>(pos) * inv_freq[i]);
      const double co = std::cos(angle) * attention_factor, si = std::sin(angle) * attention_factor;
      p[i] = d[i] * co - d[i + half] * si;
      p[i + half] = d[i + half] * co + d[i] * si;
    }
  }
  Vec mlp(const Vec& x, int64_t n, const std::string& prefix, int64_t inter) const {
    const Vec g = linear(x, n, weight(prefix + "gate_proj.weight"), inter);
    const Vec u = linear(x, n, weight(prefix + "up_proj.weight"), inter);
    Vec a(g.size());
    for (size_t i = 0; i < a.size(); ++i) a[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
    return linear(a, n, weight(prefix + "down_proj.weight"), c.hidden_size);
  }
  Vec attention(const Vec& x, int64_t n, int l) const;
  Vec moe(const Vec& x, int64_t n, int l) const;
  Vec logits(const std::vector<int32_t>& ids) const;
};

Vec Reference::attention(const Vec& x, int64_t n, int l) const {
  const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
  const MlaConfig& m = c.mla;
  const int64_t nh = c.num_heads, qk = m.qk_head_dim(), nope = m.qk_nope_head_dim, vd = m.v_head_dim;
  const int64_t rank = m.kv_lora_rank, rope_dim = m.qk_rope_head_dim;
  Vec q = m.q_lora_rank > 0 ? linear(rmsnorm(linear(x, n, weight(p + "q_a_proj.weight"), m.q_lora_rank), m.q_lora_rank,
                                             weight(p + "q_a_layernorm.weight")),
                                     n, weight(p + "q_b_proj.weight"), nh * qk)
                            : linear(x, n, weight(p + "q_proj.weight"), nh * qk);  // [n, nh, qk]
  Vec ckv = linear(x, n, weight(p + "kv_a_proj_with_mqa.weight"), rank + rope_dim);
  Vec latent(n * rank), k_pe(n * rope_dim);
  for (int64_t t = 0; t < n; ++t) {
    const auto row = ckv.begin() + t * (rank + rope_dim);  // [rank + rope]
    std::copy(row, row + rank, latent.begin() + t * rank);
    std::copy(row + rank, row + rank + rope_dim, k_pe.begin() + t * rope_dim);
  }
  const Vec kv = linear(rmsnorm(latent, rank, weight(p + "kv_a_layernorm.weight")), n, weight(p + "kv_b_proj.weight"),
                        nh * (nope + vd));  // [n, nh, nope + vd]
  const std::vector<float> inv_freq = rope_inv_freq(static_cast<int>(rope_dim), c.rope_theta, c.rope_scaling);
  const double af = rope_attention_factor(c), scale = attention_softmax_scale(c);
  for (int64_t t = 0; t < n; ++t) {
    rope(k_pe.data() + t * rope_dim, static_cast<int>(t), inv_freq, af);
    for (int64_t h = 0; h < nh; ++h) rope(q.data() + (t * nh + h) * qk + nope, static_cast<int>(t), inv_freq, af);
  }
  Vec out(n * nh * vd, 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < nh; ++h) {
      const double* qh = q.data() + (t * nh + h) * qk;
      Vec s(t + 1);
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j <= t; ++j) {
        const double* kh = kv.data() + (j * nh + h) * (nope + vd);
        double d = 0;
        for (int64_t i = 0; i < nope; ++i) d += qh[i] * kh[i];
        for (int64_t i = 0; i < rope_dim; ++i) d += qh[nope + i] * k_pe[j * rope_dim + i];
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      for (double& v : s) sum += (v = std::exp(v - mx));
      for (int64_t j = 0; j <= t; ++j)
        for (int64_t i = 0; i < vd; ++i)
          out[(t * nh + h) * vd + i] += s[j] / sum * kv[(j * nh + h) * (nope + vd) + nope + i];
    }
  return linear(out, n, weight(p + "o_proj.weight"), c.hidden_size);
}

Vec Reference::moe(const Vec& x, int64_t n, int l) const {
  const std::string p = "model.layers." + std::to_string(l) + ".mlp.";
  const int ne = c.num_experts, k = c.num_experts_per_tok, per_group = ne / c.deepseek_moe.n_group;
  const Vec logits = linear(x, n, weight(p + "gate.weight"), ne);
  const Vec bias = weight(p + "gate.e_score_correction_bias");
  Vec out = mlp(x, n, p + "shared_experts.", c.moe_intermediate_size * c.deepseek_moe.n_shared_experts);
  for (int64_t t = 0; t < n; ++t) {
    Vec score(ne), biased(ne);
    for (int e = 0; e < ne; ++e) {
      score[e] = 1.0 / (1.0 + std::exp(-logits[t * ne + e]));
      biased[e] = score[e] + bias[e];
    }
    std::vector<std::pair<double, int>> groups;
    for (int g = 0; g < c.deepseek_moe.n_group; ++g) {
      Vec b(biased.begin() + g * per_group, biased.begin() + (g + 1) * per_group);
      std::sort(b.rbegin(), b.rend());
      groups.push_back({-(b[0] + b[1]), g});
    }
    std::sort(groups.begin(), groups.end());
    std::vector<std::pair<double, int>> candidates;
    for (int i = 0; i < c.deepseek_moe.topk_group; ++i)
      for (int e = groups[i].second * per_group; e < (groups[i].second + 1) * per_group; ++e)
        candidates.push_back({-biased[e], e});
    std::sort(candidates.begin(), candidates.end());
    double total = 0;
    for (int j = 0; j < k; ++j) total += score[candidates[j].second];
    for (int j = 0; j < k; ++j) {
      const int e = candidates[j].second;
      const double w = score[e] / (c.norm_topk_prob ? total : 1.0) * c.deepseek_moe.routed_scaling_factor;
      const Vec row(x.begin() + t * c.hidden_size, x.begin() + (t + 1) * c.hidden_size);
      const Vec y = mlp(row, 1, p + "experts." + std::to_string(e) + ".", c.moe_intermediate_size);
      for (int64_t i = 0; i < c.hidden_size; ++i) out[t * c.hidden_size + i] += w * y[i];
    }
  }
  return out;
}

Vec Reference::logits(const std::vector<int32_t>& ids) const {
  const int64_t n = static_cast<int64_t>(ids.size()), hs = c.hidden_size;
  const Vec embed = weight("model.embed_tokens.weight");
  Vec h(n * hs);
  for (int64_t t = 0; t < n; ++t)
    std::copy(embed.begin() + ids[t] * hs, embed.begin() + (ids[t] + 1) * hs, h.begin() + t * hs);
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const Vec a = attention(rmsnorm(h, hs, weight(p + "input_layernorm.weight")), n, l);
    for (size_t i = 0; i < h.size(); ++i) h[i] += a[i];
    const Vec xn = rmsnorm(h, hs, weight(p + "post_attention_layernorm.weight"));
    const Vec m = c.is_moe_layer(l) ? moe(xn, n, l) : mlp(xn, n, p + "mlp.", c.intermediate_size);
    for (size_t i = 0; i < h.size(); ++i) h[i] += m[i];
  }
  return linear(rmsnorm(h, hs, weight("model.norm.weight")), n, weight("lm_head.weight"), c.vocab_size);
}

struct Variant {
  const char* name;
  int q_lora_rank;
  double mscale_all_dim;  // 0: yarn's attention factor scales cos/sin; 1: it scales the softmax
};

class CpuMlaReference : public ::testing::TestWithParam<Variant> {};

TEST_P(CpuMlaReference, AbsorbedPagedForwardMatchesExpandedReference) {
  const Variant& v = GetParam();
  ModelConfig c = find_model_preset("tiny-deepseek-v3")->config;
  c.mla.v_head_dim = 24;  // != qk_nope_head_dim 16 != kv_lora_rank 32
  c.mla.q_lora_rank = v.q_lora_rank;
  c.rope_scaling->mscale_all_dim = v.mscale_all_dim;
  const std::string dir = (fs::temp_directory_path() /
                           ("baton_mla_ref_" + std::string(v.name) + "_" + std::to_string(std::random_device{}())))
                              .string();
  std::unique_ptr<Checkpoint> ckpt = testing::write_fp32_random_checkpoint(c, dir, 11, 0.15);
  ASSERT_NE(ckpt, nullptr);
  auto backend = CpuBackend::create(*ckpt, BackendOptions{.num_threads = 2});
  ASSERT_TRUE(backend.is_ok()) << backend.status().to_string();
  ASSERT_TRUE((*backend)->init_kv_cache(16, 8).is_ok());

  std::vector<testing::TestSeq> seqs(1);
  for (int i = 0; i < 19; ++i) seqs[0].tokens.push_back((i * 53 + 7) % 512);
  seqs[0].blocks = {5, 0, 12};  // 19 tokens over three 8-token blocks, out of order
  StepInput in = testing::build_step(seqs, {19}, 8);
  auto got = (*backend)->forward_all_logits(in);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  const Reference ref{*ckpt, ckpt->config()};
  const Vec want = ref.logits(seqs[0].tokens);
  ASSERT_EQ(got->size(), want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += ((*got)[i] - want[i]) * ((*got)[i] - want[i]);
    den += want[i] * want[i];
  }
  EXPECT_LT(std::sqrt(num / den), 1e-5) << v.name;
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Variants, CpuMlaReference,
                         ::testing::Values(Variant{"q_lora_null_yarn_softmax_mscale", 0, 1.0},
                                           Variant{"q_lora_24_yarn_rope_mscale", 24, 0.0}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace baton

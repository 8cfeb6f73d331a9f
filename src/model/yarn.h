// YaRN rope scaling (rope_scaling.rope_type "yarn", DeepSeek-V3) and the
// attention scales it implies, as Hugging Face's _compute_yarn_parameters and
// vLLM's DeepseekScalingRotaryEmbedding define them. Plain functions of the
// config, shared by every backend.
#pragma once

#include <vector>

#include "model/model_config.h"

namespace baton {

// 0.1 * mscale * ln(scale) + 1 for scale > 1, else 1.
double yarn_mscale(double scale, double mscale);

// Inverse frequencies of the rotary dims, [rotary_dim / 2]: interpolated
// (theta^(2i/d) * factor) below the correction range found from beta_fast /
// beta_slow, extrapolated above it, linearly blended between.
std::vector<float> yarn_inv_freq(int rotary_dim, double theta, const RopeScaling& yarn);

// The factor cos and sin are multiplied by: attention_factor when given,
// else mscale(factor, mscale) / mscale(factor, mscale_all_dim). 1 without
// yarn.
double rope_attention_factor(const ModelConfig& config);

// The softmax scale of attention: 1 / sqrt(head_dim), and for MLA
// 1 / sqrt(qk_nope_head_dim + qk_rope_head_dim) times
// mscale(factor, mscale_all_dim)^2 under yarn.
double attention_softmax_scale(const ModelConfig& config);

}  // namespace baton

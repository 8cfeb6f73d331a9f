#include "model/yarn.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace baton {
namespace {

// The rotary dim index at which `num_rotations` full turns fit into the
// original context.
double correction_dim(double num_rotations, int dim, double base, double original_len) {
  return (dim * std::log(original_len / (num_rotations * 2.0 * std::numbers::pi))) / (2.0 * std::log(base));
}

}  // namespace

double yarn_mscale(double scale, double mscale) {
  if (scale <= 1.0) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

std::vector<float> yarn_inv_freq(int rotary_dim, double theta, const RopeScaling& yarn) {
  const int half = rotary_dim / 2;
  const double original_len = yarn.original_max_position_embeddings;
  double low = correction_dim(yarn.beta_fast, rotary_dim, theta, original_len);
  double high = correction_dim(yarn.beta_slow, rotary_dim, theta, original_len);
  if (yarn.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(rotary_dim - 1));
  if (low == high) high += 0.001;  // no division by zero in the ramp
  std::vector<float> inv(half);    // [rotary_dim / 2]
  for (int i = 0; i < half; ++i) {
    // fp32 like HF: base ** (arange(0, dim, 2) / dim).
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rotary_dim);
    const float pos_freq = static_cast<float>(std::pow(static_cast<double>(static_cast<float>(theta)), exponent));
    const float extrapolation = 1.0f / pos_freq;
    const float interpolation = 1.0f / (static_cast<float>(yarn.factor) * pos_freq);
    const float ramp = std::clamp(static_cast<float>((i - low) / (high - low)), 0.0f, 1.0f);
    const float extrapolation_weight = 1.0f - ramp;
    inv[i] = interpolation * (1.0f - extrapolation_weight) + extrapolation * extrapolation_weight;
  }
  return inv;
}

double rope_attention_factor(const ModelConfig& config) {
  if (!config.rope_scaling || config.rope_scaling->rope_type != "yarn") return 1.0;
  const RopeScaling& y = *config.rope_scaling;
  if (y.attention_factor > 0) return y.attention_factor;
  if (y.mscale != 0 && y.mscale_all_dim != 0)
    return yarn_mscale(y.factor, y.mscale) / yarn_mscale(y.factor, y.mscale_all_dim);
  return yarn_mscale(y.factor, 1.0);
}

double attention_softmax_scale(const ModelConfig& config) {
  if (!config.is_mla()) return 1.0 / std::sqrt(static_cast<double>(config.head_dim));
  double scale = 1.0 / std::sqrt(static_cast<double>(config.mla.qk_head_dim()));
  if (config.rope_scaling && config.rope_scaling->rope_type == "yarn" && config.rope_scaling->mscale_all_dim != 0) {
    const double m = yarn_mscale(config.rope_scaling->factor, config.rope_scaling->mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

}  // namespace baton

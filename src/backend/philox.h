// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC'11), the counter-based generator behind the samplers' random draws.
// Every function here is constexpr and header-only so that device code can
// call the very same functions (nvcc --expt-relaxed-constexpr) and the CPU
// and CUDA samplers make bit-identical draws.
//
// A draw is keyed by (seed, step, index): seed is the request's generator
// seed, step its number of output tokens so far, index the vocabulary id. So
// the same seed yields the same tokens whatever else shares the batch.
#pragma once

#include <array>
#include <cstdint>

namespace baton {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

namespace philox_detail {
inline constexpr uint32_t kM0 = 0xD2511F53u;
inline constexpr uint32_t kM1 = 0xCD9E8D57u;
inline constexpr uint32_t kW0 = 0x9E3779B9u;
inline constexpr uint32_t kW1 = 0xBB67AE85u;

constexpr PhiloxCounter round(const PhiloxCounter& c, const PhiloxKey& k) {
  const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
  const uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  return {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
}
}  // namespace philox_detail

// The ten-round Philox4x32 bijection of `counter` under `key`.
constexpr PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key) {
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      key[0] += philox_detail::kW0;
      key[1] += philox_detail::kW1;
    }
    counter = philox_detail::round(counter, key);
  }
  return counter;
}

// 32 random bits for (seed, step, index): counter (index / 4, step lo, step
// hi, 0), key (seed lo, seed hi), word index % 4 of the output.
constexpr uint32_t philox_bits(uint64_t seed, uint64_t step, uint64_t index) {
  const PhiloxCounter ctr = {static_cast<uint32_t>(index >> 2), static_cast<uint32_t>(step),
                             static_cast<uint32_t>(step >> 32), static_cast<uint32_t>(index >> 34)};
  const PhiloxKey key = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  return philox4x32_10(ctr, key)[index & 3];
}

// 32 random bits to a float in the open interval (0, 1): the top 23 bits,
// centred, so every value (2^-24 ... 1 - 2^-24) is exact and never 0 or 1.
constexpr float uniform_from_bits(uint32_t bits) {
  return (static_cast<float>(bits >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

constexpr float philox_uniform(uint64_t seed, uint64_t step, uint64_t index) {
  return uniform_from_bits(philox_bits(seed, step, index));
}

}  // namespace baton

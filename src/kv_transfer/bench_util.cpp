#include "kv_transfer/bench_util.h"

#include <algorithm>
#include <random>
#include <utility>

namespace baton {

std::vector<int64_t> scattered_block_ids(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (int64_t b = 0; b < n;) {
    const int64_t len = std::min<int64_t>(n - b, 1 + static_cast<int64_t>(rng() % 16));
    runs.emplace_back(b, len);
    b += len;
  }
  std::shuffle(runs.begin(), runs.end(), rng);
  std::vector<int64_t> ids;
  ids.reserve(static_cast<size_t>(n));
  for (auto [first, len] : runs) {
    for (int64_t i = 0; i < len; ++i) ids.push_back(first + i);
  }
  return ids;
}

void fill_pattern(void* data, size_t num_bytes, uint64_t seed, uint64_t first_word) {
  auto* p = static_cast<uint64_t*>(data);
  for (size_t i = 0; i < num_bytes / 8; ++i) p[i] = pattern_word(seed, first_word + i);
}

}  // namespace baton

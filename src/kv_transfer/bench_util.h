// Helpers shared by the CPU and GPU parts of `baton bench-transfer`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace baton {

// Every block 0..n-1 once, as runs of 1..16 consecutive ids in shuffled
// order (what a block allocator hands out after some churn).
std::vector<int64_t> scattered_block_ids(int64_t n, uint64_t seed);

// The 64-bit word at index `i` of the bench's fill pattern (splitmix64).
inline uint64_t pattern_word(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Fills num_bytes (a multiple of 8) with the pattern, starting at word
// `first_word`.
void fill_pattern(void* data, size_t num_bytes, uint64_t seed, uint64_t first_word = 0);

}  // namespace baton

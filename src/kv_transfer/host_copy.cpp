#include "kv_transfer/host_copy.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "kv_transfer/checksum.h"

namespace baton {

namespace {
constexpr size_t kChunkBytes = 64u << 20;  // deadline / cancel checks between chunks
// Copies at least this large bypass the cache with streaming stores: KV runs
// are megabytes, and glibc's memcpy only streams above a threshold tied to
// the cache size, so run-sized copies would otherwise also read every
// destination line first (measured ~1.5x slower for shuffled 8 MiB runs).
constexpr size_t kStreamMinBytes = 256u << 10;

void copy_bytes(uint8_t* dst, const uint8_t* src, size_t n) {
#if defined(__x86_64__)
  if (n >= kStreamMinBytes) {
    size_t head = (16 - (reinterpret_cast<uintptr_t>(dst) & 15)) & 15;
    std::memcpy(dst, src, head);
    dst += head;
    src += head;
    n -= head;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16));
      const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 32));
      const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 48));
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i), a);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 16), b);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 32), c);
      _mm_stream_si128(reinterpret_cast<__m128i*>(dst + i + 48), d);
    }
    std::memcpy(dst + i, src + i, n - i);
    _mm_sfence();  // streaming stores are weakly ordered
    return;
  }
#endif
  std::memcpy(dst, src, n);
}
}  // namespace

Result<std::vector<uint64_t>> copy_runs_host(uint8_t* dst_base, const uint8_t* src_base, size_t block_bytes,
                                             const std::vector<BlockRun>& runs, bool want_checksums,
                                             const ReadContext& ctx) {
  std::vector<uint64_t> sums;
  if (want_checksums) sums = run_checksums(src_base, block_bytes, runs, /*use_remote=*/true);
  for (const auto& run : runs) {
    const uint8_t* src = src_base + static_cast<size_t>(run.remote_first) * block_bytes;
    uint8_t* dst = dst_base + static_cast<size_t>(run.local_first) * block_bytes;
    const size_t total = static_cast<size_t>(run.num_blocks) * block_bytes;
    for (size_t off = 0; off < total; off += kChunkBytes) {
      if (ctx.is_cancelled()) return aborted("KV copy cancelled");
      if (ctx.expired()) return deadline_exceeded("KV copy timed out");
      copy_bytes(dst + off, src + off, std::min(kChunkBytes, total - off));
    }
  }
  return sums;
}

}  // namespace baton

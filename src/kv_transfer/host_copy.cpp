#include "kv_transfer/host_copy.h"

#include <algorithm>
#include <cstring>

#include "kv_transfer/checksum.h"

namespace baton {

namespace {
constexpr size_t kChunkBytes = 64u << 20;  // deadline / cancel checks between chunks
}

Result<std::vector<uint64_t>> copy_runs_host(uint8_t* dst_base, const uint8_t* src_base,
                                             size_t block_bytes, const std::vector<BlockRun>& runs,
                                             bool want_checksums, const ReadContext& ctx) {
  std::vector<uint64_t> sums;
  if (want_checksums) sums = run_checksums(src_base, block_bytes, runs, /*use_remote=*/true);
  for (const auto& run : runs) {
    const uint8_t* src = src_base + static_cast<size_t>(run.remote_first) * block_bytes;
    uint8_t* dst = dst_base + static_cast<size_t>(run.local_first) * block_bytes;
    const size_t total = static_cast<size_t>(run.num_blocks) * block_bytes;
    for (size_t off = 0; off < total; off += kChunkBytes) {
      if (ctx.is_cancelled()) return aborted("KV copy cancelled");
      if (ctx.expired()) return deadline_exceeded("KV copy timed out");
      std::memcpy(dst + off, src + off, std::min(kChunkBytes, total - off));
    }
  }
  return sums;
}

}  // namespace baton

// Copying block runs between two host regions (local and shm transports), in
// chunks so that a long copy still honours its deadline and cancellation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv_transfer/block_runs.h"
#include "kv_transfer/transport.h"

namespace baton {

// dst[local_first..] <- src[remote_first..] for every run. With
// want_checksums, returns the xxHash64 of each source block (run order).
Result<std::vector<uint64_t>> copy_runs_host(uint8_t* dst_base, const uint8_t* src_base, size_t block_bytes,
                                             const std::vector<BlockRun>& runs, bool want_checksums,
                                             const ReadContext& ctx);

}  // namespace baton

// xxHash64 of KV blocks, to detect corrupted transfers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv_transfer/block_runs.h"
#include "kv_transfer/kv_region.h"

namespace baton {

uint64_t block_checksum(const void* data, size_t num_bytes);

// One checksum per block, in run order, over the remote (use_remote=true) or
// local side of the runs. Host memory only.
std::vector<uint64_t> run_checksums(const uint8_t* base, size_t block_bytes, const std::vector<BlockRun>& runs,
                                    bool use_remote);

// Compares the local blocks of `runs` with the expected checksums; a mismatch
// is DATA_LOSS naming the first bad block.
Status verify_run_checksums(const KvRegionDesc& local, const std::vector<BlockRun>& runs,
                            const std::vector<uint64_t>& expected);

}  // namespace baton

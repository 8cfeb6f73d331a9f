// One large block read over several TCP connections at once (the tcp
// transport's link). A read whose data exceeds min_stream_bytes is cut into
// up to num_streams parts of whole blocks (split_runs_for_streams), each sent
// as its own kReadBlocks request over its own pooled connection of the
// AgentClient, all in flight together, one thread per part (the reads block
// on their sockets; the calling thread supervises). Per-block checksums come
// back in the read's block order.
//
// Device regions: every part needs its own staging pair. The first pair is
// leased waiting (as a single-stream read does); the others only if one is
// free now (StagingPool::try_acquire), and the read uses as many streams as
// it got pairs. So a transfer never holds some pairs while waiting for more:
// concurrent transfers cannot deadlock on the pool's bound, and a short pool
// costs parallelism, not progress.
//
// Errors: the first part to fail fails the read (its status, with the part,
// its blocks and the peer named); the other parts are cancelled at once and
// their connections shut down (a connection that failed or was cancelled
// mid-frame is never returned to the pool). Cancelling or timing out the read
// cancels every part. Every part has finished when this returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"
#include "kv_transfer/agent_client.h"
#include "kv_transfer/block_runs.h"
#include "kv_transfer/kv_region.h"
#include "kv_transfer/staging_pool.h"
#include "kv_transfer/transport.h"

namespace baton {

struct MultiStreamOptions {
  int num_streams = 4;
  size_t min_stream_bytes = 8u << 20;
};

Result<std::vector<uint64_t>> read_blocks_multi_stream(AgentClient& client, const std::vector<BlockRun>& runs,
                                                       const KvRegionDesc& local, bool want_checksums,
                                                       const ReadContext& ctx, StagingPool* staging,
                                                       const MultiStreamOptions& options);

}  // namespace baton

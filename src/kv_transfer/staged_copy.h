// Double-buffered staging of device KV through host memory (the tcp
// transport's path for a GPU-resident cache): the device copy of one chunk
// overlaps the socket I/O of its neighbour, so a transfer runs at the slower
// of the two rates instead of their sum.
//   kToHost (the serving side):  copy(i, buf) fills buf from the device on a
//     worker thread while io(i - 1, other buf) sends the previous chunk here;
//   kToDevice (the reading side): io(i, buf) reads chunk i from the socket
//     here while copy(i - 1, other buf) empties the previous chunk to the
//     device on a worker thread.
// Chunks are processed in order; each buffer is handed to one stage at a
// time (the caller owns both buffers). The first error (from either stage) stops the pipeline and is
// returned once the other stage's work in flight has finished.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "common/status.h"
#include "kv_transfer/block_runs.h"

namespace baton {

// One staged chunk: whole consecutive blocks of one run.
struct StagedChunk {
  int64_t first_block = 0;  // in the region being copied (remote or local side of the run)
  size_t num_bytes = 0;
};

// Splits runs into chunks of at most max(1, staging_bytes / block_bytes)
// blocks, in order; `use_remote` picks which side's block ids the chunks name.
std::vector<StagedChunk> staged_chunks(const std::vector<BlockRun>& runs, size_t block_bytes, size_t staging_bytes,
                                       bool use_remote);
// The largest chunk: what each staging buffer must hold.
size_t staging_buffer_bytes(const std::vector<StagedChunk>& chunks);

enum class StageDirection { kToHost, kToDevice };

using StageFn = std::function<Status(size_t chunk, uint8_t* buffer)>;

// `buffers`: the two staging buffers, each holding every chunk (the caller's:
// a StagingPool lease, so nothing is allocated per transfer). Chunk i goes
// through buffers[i % 2].
Status run_staged(StageDirection direction, size_t num_chunks, std::array<uint8_t*, 2> buffers, const StageFn& copy,
                  const StageFn& io);

}  // namespace baton

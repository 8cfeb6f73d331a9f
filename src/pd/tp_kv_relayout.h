// TpKvRelayout: the KV handoff of a tensor-parallel instance. Peers exchange
// KV in one layout whatever either side's TP (docs/pd.md, "Tensor-parallel
// layouts"): the wire layout, kv_layout.h's with every model KV head once,
// in head order (an MLA latent row once). A TP=1 instance's cache is already
// in it. At TP > 1 each rank's cache holds only its heads, so the PD
// connector keeps a region in the wire layout beside the ranks' caches:
//
//   prefill  gather():  each head's slice of every row, from the first rank
//                        holding it, into the region peers read (one copy per
//                        head group, row and layer) as a lease's blocks become final
//   decode   scatter(): the blocks a pull read into the region, to every rank
//                        the slice of the heads it owns (replicas included)
//
// so a prefill at TP=a serves a decode at TP=b for any a and b the model's
// heads allow. Host KV only: a device cache is refused (the GPU ranks come
// with the NCCL communicator).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv/kv_layout.h"
#include "kv_transfer/shm_buffer.h"

namespace baton {

// The layout peers exchange for `memory`'s cache: its layout with every
// model KV head (memory.layout at TP=1).
KvLayout wire_kv_layout(const KvMemory& memory);

class TpKvRelayout {
 public:
  // `memory` is a tensor-parallel instance's host KV (rank_bases set). The
  // region is a shared-memory object when `shared` (peers map it: shm), else
  // heap memory.
  static Result<std::unique_ptr<TpKvRelayout>> create(const KvMemory& memory, bool shared);

  // Ranks -> region: these blocks' every KV head.
  void gather(const std::vector<int>& block_ids);
  // Region -> ranks: these blocks, each rank its own heads.
  void scatter(const std::vector<int64_t>& block_ids);

  void* data() const { return data_; }
  // The shared-memory object's name ("" for heap memory).
  std::string shm_name() const { return shm_ ? shm_->name() : std::string(); }
  const KvLayout& wire_layout() const { return wire_; }

 private:
  TpKvRelayout(const KvMemory& memory, KvLayout wire) : rank_layout_(memory.layout), wire_(wire), tp_(memory.tp) {
    for (void* base : memory.rank_bases) rank_bases_.push_back(static_cast<uint8_t*>(base));
  }
  // Copies the rows of one block between rank `rank`'s cache and the region.
  void copy_block(int rank, int64_t block, bool to_region);

  KvLayout rank_layout_;  // one rank's cache
  KvLayout wire_;         // the region
  KvTpLayout tp_;
  std::vector<uint8_t*> rank_bases_;
  std::unique_ptr<SharedMemoryBuffer> shm_;
  std::unique_ptr<uint8_t[]> heap_;
  uint8_t* data_ = nullptr;
};

}  // namespace baton

// TpKvRelayout: the KV handoff of a tensor-parallel instance. Peers exchange
// KV in one layout whatever either side's TP (docs/pd.md, "Tensor-parallel
// layouts"): the wire layout, kv_layout.h's with every model KV head once,
// in head order (an MLA latent row once). A TP=1 instance's cache is already
// in it. At TP > 1 each rank's cache holds only its heads, so the PD
// connector keeps a region in the wire layout beside the ranks' caches:
//
//   prefill  gather():  each head group's slice of every row, from the first
//                        rank holding it, into the region peers read, as a
//                        lease's blocks become final
//   decode   scatter(): the blocks a pull read into the region, to every rank
//                        the slice of the heads it owns (replicas included)
//
// so a prefill at TP=a serves a decode at TP=b for any a and b the model's
// heads allow. A run of consecutive blocks is one strided copy per rank
// (rows of one rank's heads, pitched by the wire row; the kv_layout.h rows
// of a run are evenly spaced across blocks, layers and planes). Host caches
// copy with memcpy; device caches (the CUDA ranks) keep the region in device
// memory on the first rank's GPU (so cuda_ipc peers map it, and tcp stages it
// as any device region) and copy with the DeviceCopier's 2-D device copies.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv/kv_layout.h"
#include "kv_transfer/kv_region.h"
#include "kv_transfer/shm_buffer.h"

namespace baton {

// The layout peers exchange for `memory`'s cache: its layout with every
// model KV head (memory.layout at TP=1).
KvLayout wire_kv_layout(const KvMemory& memory);

class TpKvRelayout {
 public:
  // `memory` is a tensor-parallel instance's KV (rank_bases set). Host KV:
  // the region is a shared-memory object when `shared` (peers map it: shm),
  // else heap memory. Device KV: the region is device memory from `device`
  // (not owned; it outlives the relayout), which a device cache needs.
  static Result<std::unique_ptr<TpKvRelayout>> create(const KvMemory& memory, bool shared,
                                                      DeviceCopier* device = nullptr);
  ~TpKvRelayout();
  TpKvRelayout(const TpKvRelayout&) = delete;
  TpKvRelayout& operator=(const TpKvRelayout&) = delete;

  // Ranks -> region: these blocks' every KV head.
  Status gather(const std::vector<int>& block_ids);
  // Region -> ranks: these blocks, each rank its own heads.
  Status scatter(const std::vector<int64_t>& block_ids);

  void* data() const { return data_; }
  bool on_device() const { return device_ != nullptr; }
  // The shared-memory object's name ("" for heap or device memory).
  std::string shm_name() const { return shm_ ? shm_->name() : std::string(); }
  const KvLayout& wire_layout() const { return wire_; }

 private:
  TpKvRelayout(const KvMemory& memory, KvLayout wire) : rank_layout_(memory.layout), wire_(wire), tp_(memory.tp) {
    for (void* base : memory.rank_bases) rank_bases_.push_back(static_cast<uint8_t*>(base));
  }
  // The copies of these blocks between the region and every rank in `ranks`.
  std::vector<DeviceCopier::StridedCopy> copies(const std::vector<int64_t>& block_ids, const std::vector<int>& ranks,
                                                bool to_region) const;
  Status run(const std::vector<DeviceCopier::StridedCopy>& copies);

  KvLayout rank_layout_;  // one rank's cache
  KvLayout wire_;         // the region
  KvTpLayout tp_;
  std::vector<uint8_t*> rank_bases_;
  std::unique_ptr<SharedMemoryBuffer> shm_;
  std::unique_ptr<uint8_t[]> heap_;
  DeviceCopier* device_ = nullptr;  // device KV: the region's allocator and copier
  uint8_t* data_ = nullptr;
};

}  // namespace baton

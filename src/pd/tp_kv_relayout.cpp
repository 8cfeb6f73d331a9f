#include "pd/tp_kv_relayout.h"

#include <cstring>
#include <new>

#include "pd/shm_kv_mirror.h"

namespace baton {

KvLayout wire_kv_layout(const KvMemory& memory) {
  KvLayout wire = memory.layout;
  wire.num_kv_heads = memory.tp_layout().total_kv_heads();
  return wire;
}

Result<std::unique_ptr<TpKvRelayout>> TpKvRelayout::create(const KvMemory& memory, bool shared, DeviceCopier* device) {
  const KvTpLayout& tp = memory.tp;
  if (memory.on_device && device == nullptr) {
    return unimplemented(
        "the KV handoff of a tensor-parallel instance with its cache on GPU {} needs a device copier (a CUDA build)",
        memory.device_id);
  }
  if (tp.tp_size < 2 || static_cast<int>(memory.rank_bases.size()) != tp.tp_size) {
    return invalid_argument("a tensor-parallel KV relayout needs every rank's cache ({} ranks, {} caches)", tp.tp_size,
                            memory.rank_bases.size());
  }
  if (tp.kv_heads_per_rank != memory.layout.num_kv_heads || tp.kv_head_replicas < 1 ||
      tp.tp_size % tp.kv_head_replicas != 0) {
    return invalid_argument(
        "tensor-parallel KV layout: {} ranks of {} KV heads, each head on {} ranks, but a rank's "
        "cache holds {} heads",
        tp.tp_size, tp.kv_heads_per_rank, tp.kv_head_replicas, memory.layout.num_kv_heads);
  }
  for (void* base : memory.rank_bases)
    if (base == nullptr) return failed_precondition("tensor-parallel KV relayout: a rank's KV cache is not allocated");
  std::unique_ptr<TpKvRelayout> r(new TpKvRelayout(memory, wire_kv_layout(memory)));
  const size_t bytes = r->wire_.total_bytes();
  if (memory.on_device) {
    BATON_ASSIGN_OR_RETURN(void* region, device->alloc_device(bytes));
    r->device_ = device;
    r->data_ = static_cast<uint8_t*>(region);
  } else if (shared) {
    ShmKvMirror::remove_stale();
    BATON_ASSIGN_OR_RETURN(r->shm_, SharedMemoryBuffer::create(SharedMemoryBuffer::unique_name("pdkv"), bytes));
    r->data_ = static_cast<uint8_t*>(r->shm_->data());
  } else {
    r->heap_.reset(new (std::nothrow) uint8_t[bytes]);
    if (!r->heap_) return resource_exhausted("tensor-parallel KV relayout: cannot allocate {} bytes", bytes);
    r->data_ = r->heap_.get();
  }
  return r;
}

TpKvRelayout::~TpKvRelayout() {
  if (device_ != nullptr) device_->free_device(data_);
}

std::vector<DeviceCopier::StridedCopy> TpKvRelayout::copies(const std::vector<int64_t>& block_ids,
                                                            const std::vector<int>& ranks, bool to_region) const {
  const size_t elem = dtype_size(wire_.dtype);
  const size_t rank_row = static_cast<size_t>(rank_layout_.token_elems()) * elem;  // one rank's heads
  const size_t wire_row = static_cast<size_t>(wire_.token_elems()) * elem;
  const size_t rows_per_block = static_cast<size_t>(wire_.num_layers) * wire_.planes() * wire_.block_size;
  std::vector<DeviceCopier::StridedCopy> out;
  for (size_t i = 0; i < block_ids.size();) {
    size_t n = 1;  // a run of consecutive block ids
    while (i + n < block_ids.size() && block_ids[i + n] == block_ids[i] + static_cast<int64_t>(n)) ++n;
    const int64_t first = block_ids[i];
    for (int rank : ranks) {
      const size_t head_offset = static_cast<size_t>(tp_.first_kv_head(rank)) * wire_.head_dim * elem;
      uint8_t* wire = data_ + wire_.offset(first, 0, 0, 0) * elem + head_offset;
      uint8_t* own = rank_bases_[rank] + rank_layout_.offset(first, 0, 0, 0) * elem;
      if (to_region) {
        out.push_back({wire, wire_row, own, rank_row, rank_row, n * rows_per_block});
      } else {
        out.push_back({own, rank_row, wire, wire_row, rank_row, n * rows_per_block});
      }
    }
    i += n;
  }
  return out;
}

Status TpKvRelayout::run(const std::vector<DeviceCopier::StridedCopy>& copies) {
  if (device_ != nullptr) return device_->copy_strided(copies);
  for (const DeviceCopier::StridedCopy& c : copies)
    for (size_t r = 0; r < c.rows; ++r)
      std::memcpy(static_cast<uint8_t*>(c.dst) + r * c.dst_pitch, static_cast<const uint8_t*>(c.src) + r * c.src_pitch,
                  c.width);
  return Status::ok();
}

Status TpKvRelayout::gather(const std::vector<int>& block_ids) {
  // Each group of heads from the first rank holding it; its replicas hold the same values.
  std::vector<int> ranks;
  for (int rank = 0; rank < tp_.tp_size; rank += tp_.kv_head_replicas) ranks.push_back(rank);
  return run(copies(std::vector<int64_t>(block_ids.begin(), block_ids.end()), ranks, /*to_region=*/true))
      .with_context("gathering a tensor-parallel instance's KV heads into the wire layout");
}

Status TpKvRelayout::scatter(const std::vector<int64_t>& block_ids) {
  std::vector<int> ranks;
  for (int rank = 0; rank < tp_.tp_size; ++rank) ranks.push_back(rank);
  return run(copies(block_ids, ranks, /*to_region=*/false))
      .with_context("scattering the wire layout's KV heads to a tensor-parallel instance's ranks");
}

}  // namespace baton

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

Result<std::unique_ptr<TpKvRelayout>> TpKvRelayout::create(const KvMemory& memory, bool shared) {
  const KvTpLayout& tp = memory.tp;
  if (memory.on_device) {
    return unimplemented(
        "the KV handoff of a tensor-parallel instance moves host KV only (its device cache waits for the GPU ranks)");
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
  if (shared) {
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

void TpKvRelayout::copy_block(int rank, int64_t block, bool to_region) {
  const size_t elem = dtype_size(wire_.dtype);
  const size_t rank_row = static_cast<size_t>(rank_layout_.token_elems()) * elem;  // this rank's heads
  const size_t head_offset = static_cast<size_t>(tp_.first_kv_head(rank)) * wire_.head_dim * elem;
  for (int layer = 0; layer < wire_.num_layers; ++layer) {
    for (int plane = 0; plane < wire_.planes(); ++plane) {
      for (int row = 0; row < wire_.block_size; ++row) {
        uint8_t* wire = data_ + wire_.offset(block, layer, plane, row) * elem + head_offset;
        uint8_t* own = rank_bases_[rank] + rank_layout_.offset(block, layer, plane, row) * elem;
        if (to_region) {
          std::memcpy(wire, own, rank_row);
        } else {
          std::memcpy(own, wire, rank_row);
        }
      }
    }
  }
}

void TpKvRelayout::gather(const std::vector<int>& block_ids) {
  // Each group of heads from the first rank holding it; its replicas hold the same values.
  for (int block : block_ids)
    for (int rank = 0; rank < tp_.tp_size; rank += tp_.kv_head_replicas) copy_block(rank, block, /*to_region=*/true);
}

void TpKvRelayout::scatter(const std::vector<int64_t>& block_ids) {
  for (int64_t block : block_ids)
    for (int rank = 0; rank < tp_.tp_size; ++rank) copy_block(rank, block, /*to_region=*/false);
}

}  // namespace baton

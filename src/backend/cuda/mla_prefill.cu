// The expanded MLA prefill's bookkeeping (mla_prefill.h): the step's key
// offsets and work items, and the gather of each sequence's cached latent
// rows into one contiguous buffer for the kv_b_proj GEMM. The attention
// kernel itself is attention_wgmma_ws.cu's MlaExpanded instantiation.
#include "backend/cuda/mla_prefill.h"

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"

namespace baton::cuda {
namespace {

constexpr int kGatherKeys = 32;  // latent rows per gather block

// One thread: the sequences are few, the items a handful per sequence.
__global__ void mla_expand_plan_kernel(const int32_t* query_start, const int32_t* seq_lens, int num_seqs,
                                       int rows_per_item, int32_t* key_start, int32_t* items, int32_t* num_items) {
  int keys = 0, k = 0;
  for (int s = 0; s < num_seqs; ++s) {
    key_start[s] = keys;
    keys += seq_lens[s];
    const int q_len = query_start[s + 1] - query_start[s];
    for (int tile = (q_len + rows_per_item - 1) / rows_per_item - 1; tile >= 0; --tile) {
      items[2 * k] = s;
      items[2 * k + 1] = tile * rows_per_item;
      ++k;
    }
  }
  num_items[0] = k;
}

// Block (x, s): keys [kGatherKeys x, kGatherKeys (x + 1)) of sequence s, 16 bytes a thread at a time.
__global__ void mla_gather_latent_kernel(MlaGatherArgs a) {
  const int s = blockIdx.y, len = a.seq_lens[s], key0 = blockIdx.x * kGatherKeys;
  if (key0 >= len) return;
  const int chunks = static_cast<int>(a.kv.token_elems / 8);  // 16-byte chunks a row
  const int32_t* btab = a.block_tables + static_cast<int64_t>(s) * a.max_blocks_per_seq;
  bf16* out = a.latent_out + (static_cast<int64_t>(a.key_start[s]) + key0) * a.kv.token_elems;
  const int keys = min(kGatherKeys, len - key0);
  for (int c = threadIdx.x; c < keys * chunks; c += blockDim.x) {
    const int j = c / chunks, chunk = c % chunks, key = key0 + j;
    const bf16* src = a.kv.base + btab[key / a.kv.block_size] * a.kv.block_elems + a.layer * a.kv.layer_block_elems +
                      (key % a.kv.block_size) * a.kv.token_elems;
    reinterpret_cast<uint4*>(out + static_cast<int64_t>(j) *
                                       a.kv.token_elems)[chunk] = reinterpret_cast<const uint4*>(src)[chunk];
  }
}

}  // namespace

void launch_mla_expand_plan(const int32_t* query_start, const int32_t* seq_lens, int num_seqs, int32_t* key_start,
                            int32_t* items, int32_t* num_items, cudaStream_t stream) {
  mla_expand_plan_kernel<<<1, 1, 0, stream>>>(query_start, seq_lens, num_seqs, mla_expanded_rows_per_item(), key_start,
                                              items, num_items);
  BATON_LAUNCH_CHECK();
}

void launch_mla_gather_latent(const MlaGatherArgs& a, cudaStream_t stream) {
  if (a.num_seqs == 0 || a.max_keys == 0) return;
  BATON_CHECK(a.kv.token_elems % 8 == 0, "latent gather: rows of {} values (needs a multiple of 8)", a.kv.token_elems);
  BATON_CHECK(a.num_seqs <= 65535, "latent gather: {} sequences", a.num_seqs);
  const dim3 grid((a.max_keys + kGatherKeys - 1) / kGatherKeys, a.num_seqs);
  mla_gather_latent_kernel<<<grid, 256, 0, stream>>>(a);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda

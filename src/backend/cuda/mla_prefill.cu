// The expanded MLA prefill's bookkeeping (mla_prefill.h): the step's key
// offsets and work items, and the gather of each sequence's cached latent
// rows into one contiguous buffer for the kv_b_proj GEMM. The attention
// kernel itself is attention_wgmma_ws.cu's MlaExpanded instantiation.
#include "backend/cuda/mla_prefill.h"

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/gemm.h"

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

int mla_expanded_plan_ints(int num_tokens, int num_seqs) {
  return num_seqs + 1 + 2 * mla_expanded_max_items(num_tokens, num_seqs);
}

void launch_mla_expanded_attention(const MlaExpandedStep& s, Gemm& gemm, cudaStream_t stream,
                                   cudaEvent_t kernel_start) {
  if (s.num_tokens == 0) return;
  // plan: key_start [S], num_items [1], items [max_items, 2].
  int32_t* key_start = s.plan;
  int32_t* num_items = key_start + s.num_seqs;
  int32_t* items = num_items + 1;
  launch_mla_expand_plan(s.query_start, s.seq_lens, s.num_seqs, key_start, items, num_items, stream);
  MlaGatherArgs ga;
  ga.kv = s.kv;
  ga.layer = s.layer;
  ga.block_tables = s.block_tables;
  ga.max_blocks_per_seq = s.max_blocks_per_seq;
  ga.seq_lens = s.seq_lens;
  ga.key_start = key_start;
  ga.num_seqs = s.num_seqs;
  ga.max_keys = s.max_blocks_per_seq * s.kv.block_size;
  ga.latent_out = s.latent_rows;
  launch_mla_gather_latent(ga, stream);

  // [K_nope[h], V[h]] for every key: latent[:, :rank] . kv_b^T.
  const int64_t latent = s.kv.token_elems,
                cols = static_cast<int64_t>(s.num_heads) * (kMlaExpandedNope + kMlaExpandedV);
  BatchedGemm g;
  g.x = s.latent_rows;
  g.ldx = latent;
  g.w = s.kv_b;
  g.ldw = s.kv_lora_rank;
  g.y = s.kv_rows;
  g.ldy = cols;
  g.batch = 1;
  g.m = static_cast<int>(s.total_keys);
  g.n = static_cast<int>(cols);
  g.k = s.kv_lora_rank;
  gemm.run_batched(g, stream);

  MlaExpandedAttnArgs a;
  a.q = s.q;
  a.out = s.out;
  a.kv = s.kv_rows;
  a.kv_stride = cols;
  a.k_rope = s.latent_rows + s.kv_lora_rank;
  a.k_rope_stride = latent;
  a.query_start = s.query_start;
  a.seq_lens = s.seq_lens;
  a.key_start = key_start;
  a.num_items = num_items;
  a.num_seqs = s.num_seqs;
  a.num_heads = s.num_heads;
  a.scale = s.scale;
  if (kernel_start) cudaEventRecord(kernel_start, stream);
  launch_mla_attention_prefill_expanded(a, items, mla_expanded_max_items(s.num_tokens, s.num_seqs), stream);
}

}  // namespace baton::cuda

// backend-ops runners: paged attention, prefill (varlen, cached prefixes,
// causal) and decode (one token per sequence, context split over blocks),
// against the CPU's paged_attention.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/kernels.h"
#include "backend_ops.h"
#include "common/thread_pool.h"

namespace baton::cuda::ops {
namespace {

using testing::download_bf16;
using testing::poisoned_bf16;
using testing::random_bf16_values;
using testing::upload;
using testing::upload_bf16;

// Prefill work items: (sequence, first row) per tile of attention_rows_per_tile() rows.
std::vector<int32_t> work_items(const AttnShape& s) {
  const int group = s.num_heads / s.num_kv_heads, rpt = attention_rows_per_tile();
  std::vector<int32_t> items;
  for (size_t i = 0; i < s.q_lens.size(); ++i)
    for (int tile = 0; tile < (s.q_lens[i] * group + rpt - 1) / rpt; ++tile) {
      items.push_back(static_cast<int32_t>(i));
      items.push_back(tile * rpt);
    }
  return items;
}

std::vector<Check> run_attention(const AttnShape& s, std::mt19937& rng) {
  const int layers = 2, layer = 1, nh = s.num_heads, hd = s.head_dim;
  const Batch b = make_batch(s.q_lens, s.ctx_lens, s.block_size, rng);
  PagedCache cache = make_paged_cache(layers, s.num_kv_heads, hd, s.block_size, b.total_blocks + 3, rng,
                                      s.fp8 ? DType::kF8E4M3 : DType::kBF16);
  const size_t q_elems = static_cast<size_t>(b.num_tokens) * nh * hd;
  const auto q = random_bf16_values(q_elems, 2.0f, rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  auto dq = upload_bf16(q);
  auto dout = poisoned_bf16(q_elems);
  const DeviceBatch db = upload_batch(b);
  AttnArgs a = device_attention_args(db, b, cache, layer, dq.as<bf16>(), dout.as<bf16>(), nh, scale);
  a.num_kv_heads = s.num_kv_heads;
  a.head_dim = hd;
  DeviceBuffer partial, ditems;
  if (s.decode) {
    const int max_splits = std::max(1, (b.max_len + s.split_len - 1) / s.split_len);
    BATON_CHECK_OK(partial.allocate(static_cast<size_t>(a.num_seqs) * nh * max_splits * (hd + 2) * 4));
    launch_attention_decode(a, s.split_len, max_splits, partial.as<float>(), nullptr);
  } else {
    const auto items = work_items(s);
    ditems = upload(items);
    launch_attention_prefill(a, ditems.as<int32_t>(), static_cast<int>(items.size() / 2), nullptr);
  }
  const auto out = download_bf16(dout, q_elems);  // synchronises

  const PagedAttentionArgs c = reference_attention_args(b, cache, layer, q.data(), nh, scale);
  std::vector<float> ref(q_elems);
  paged_attention(c, ref.data(), &reference_pool());
  return {compare("out", out, ref, kTolBf16)};
}

}  // namespace

ThreadPool& reference_pool() {
  static ThreadPool pool(0);
  return pool;
}

Batch make_batch(const std::vector<int>& q_lens, const std::vector<int>& ctx_lens, int block_size, std::mt19937& rng) {
  Batch b;
  const int n = static_cast<int>(q_lens.size()), bs = block_size;
  for (int i = 0; i < n; ++i) {
    const int len = q_lens[i] + ctx_lens[i];
    b.max_len = std::max(b.max_len, len);
    b.total_blocks += (len + bs - 1) / bs;
  }
  b.max_blocks_per_seq = (b.max_len + bs - 1) / bs;
  std::vector<int> perm(b.total_blocks + 3);  // 3 blocks nobody uses
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  b.block_tables.assign(static_cast<size_t>(n) * b.max_blocks_per_seq, -1);
  int next = 0;
  for (int i = 0; i < n; ++i) {
    const int len = q_lens[i] + ctx_lens[i];
    for (int k = 0; k < (len + bs - 1) / bs; ++k) b.block_tables[i * b.max_blocks_per_seq + k] = perm[next++];
    for (int j = 0; j < q_lens[i]; ++j) {
      b.positions.push_back(ctx_lens[i] + j);
      b.seq_of_token.push_back(i);
    }
    b.query_start.push_back(b.query_start.back() + q_lens[i]);
    b.seq_lens.push_back(len);
  }
  b.num_tokens = b.query_start.back();
  return b;
}

OpCase attention_case(const AttnShape& s) {
  std::string shape = "hd" + std::to_string(s.head_dim) + " nh" + std::to_string(s.num_heads) + " nkv" +
                      std::to_string(s.num_kv_heads) + " bs" + std::to_string(s.block_size) + " q" + join(s.q_lens) +
                      " ctx" + join(s.ctx_lens);
  if (s.decode) shape += " split" + std::to_string(s.split_len);
  if (s.fp8) shape += " fp8";
  return make_case(s.decode ? "attention_decode" : "attention_prefill", shape, s, run_attention);
}

}  // namespace baton::cuda::ops

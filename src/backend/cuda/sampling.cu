// One block per sampling row. Thresholds (top-k value, top-p boundary) are
// found by bisection over the order-preserving integer keys of the floats, so
// the vocabulary is never sorted; the draw itself is a Gumbel-max argmax.
// Plain rows (greedy, or temperature alone; no penalty or banned tokens, no
// top logprobs) need only a max, a sum and an argmax, which split over the
// vocabulary: many blocks leave each chunk's (max, sum of exp, pick) and the
// row's block merges them. One block over a 128K vocabulary took ~50 us, the
// read of 512 KB at one SM's bandwidth, three times over.
#include <cfloat>
#include <climits>

#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/sampling.h"
#include "backend/philox.h"

namespace baton::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ uint32_t fkey(float f) {
  uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ double block_sum_d(double v, double* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double r = lane < (kThreads >> 5) ? scratch[lane] : 0.0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) r += __shfl_xor_sync(0xffffffffu, r, o);
  return r;
}

__device__ int block_count(int v, double* scratch) {
  return static_cast<int>(block_sum_d(static_cast<double>(v), scratch) + 0.5);
}

// Argmax (ties: lowest id) of val(i) over i in [0, n) where val(i) > -inf.
template <typename Val>
__device__ void block_argmax(int n, Val val, float* fs, int* is, float* best_v, int* best_i) {
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    float v = val(i);
    if (v > bv || (v == bv && v != -INFINITY && i < bi)) {
      bv = v;
      bi = v == -INFINITY ? bi : i;
    }
  }
  warp_argmax(bv, bi);
  __syncthreads();
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    fs[warp] = bv;
    is[warp] = bi;
  }
  __syncthreads();
  if (warp == 0) {
    bv = fs[lane];
    bi = is[lane];
    warp_argmax(bv, bi);
    if (lane == 0) {
      fs[0] = bv;
      is[0] = bi;
    }
  }
  __syncthreads();
  *best_v = fs[0];
  *best_i = is[0];
  __syncthreads();
}

// ---- plain rows, split over the vocabulary
constexpr int kChunkThreads = 256;
constexpr int kChunkLen = 4096;  // logits a chunk block reads

__device__ __forceinline__ bool plain_row(const SampleRowParams& p, int vocab) {
  const bool filters = p.temperature > 0.0f && (p.min_p > 0.0f || (p.top_k > 0 && p.top_k < vocab) || p.top_p < 1.0f);
  return vocab >= 4 && p.num_logprobs <= 0 && p.penalty_begin == p.penalty_end && !filters;  // 4: a summary's floats
}

// What the general path's final argmax ranks, for a plain row: the logit
// (greedy) or its Gumbel-perturbed tempered value, -inf for a -inf logit.
__device__ __forceinline__ float plain_pick(const SampleRowParams& p, float raw, int i) {
  if (p.temperature <= 0.0f) return raw;
  const float v = raw * (1.0f / p.temperature);
  if (v == -INFINITY) return -INFINITY;
  const float u = philox_uniform(p.seed, p.step, static_cast<uint64_t>(i));
  return v - logf(-logf(u));
}

// A chunk's summary, in the row's scratch (work): raw max (NaN ignored), the
// sum of exp(raw - max) (NaN if a logit is), the best pick and its id.
struct ChunkSummary {
  float max, sum, pick;
  int id;
};

// grid (chunks, rows): block c summarises logits [c kChunkLen, (c + 1) kChunkLen) of its row.
__global__ void __launch_bounds__(kChunkThreads)
    sample_chunks_kernel(const float* logits, float* work, int vocab, const SampleRowParams* params) {
  pdl_wait();
  __shared__ float fs[kChunkThreads / 32], ps[kChunkThreads / 32];
  __shared__ int is[kChunkThreads / 32];
  __shared__ double ds[kChunkThreads / 32];
  const int row = blockIdx.y, chunk = blockIdx.x;
  const SampleRowParams p = params[row];
  if (!plain_row(p, vocab)) return;
  const float* raw = logits + static_cast<int64_t>(row) * vocab;
  const int begin = chunk * kChunkLen, end = min(vocab, begin + kChunkLen);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float mx = -INFINITY, bv = -INFINITY;
  int bi = INT_MAX;
  for (int i = begin + threadIdx.x; i < end; i += kChunkThreads) {
    const float v = raw[i];
    if (v > mx) mx = v;
    const float pv = plain_pick(p, v, i);
    if (pv > bv) {  // ids rise within a thread: a tie keeps the lower
      bv = pv;
      bi = i;
    }
  }
  mx = warp_max(mx);
  warp_argmax(bv, bi);
  if (lane == 0) {
    fs[warp] = mx;
    ps[warp] = bv;
    is[warp] = bi;
  }
  __syncthreads();
  mx = -INFINITY;
  bv = -INFINITY;
  bi = INT_MAX;
  for (int w = 0; w < kChunkThreads / 32; ++w) {
    mx = fmaxf(mx, fs[w]);
    if (ps[w] > bv || (ps[w] == bv && is[w] < bi)) {
      bv = ps[w];
      bi = is[w];
    }
  }
  float se = 0.0f;  // fp32 terms per thread, summed across the block in double (as the one-block path)
  if (mx != -INFINITY)
    for (int i = begin + threadIdx.x; i < end; i += kChunkThreads) se += __expf(raw[i] - mx);
  double d = se;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
  if (lane == 0) ds[warp] = d;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < kChunkThreads / 32; ++w) total += ds[w];
    ChunkSummary* cs = reinterpret_cast<ChunkSummary*>(work + static_cast<int64_t>(row) * vocab) + chunk;
    *cs = ChunkSummary{mx, static_cast<float>(total), bv, bi};
  }
}

// The row's block merges its chunks' summaries (warp 0; the caller returns after).
__device__ void merge_chunks(int row, const float* raw, const float* work, int vocab, SampleOutputs out) {
  if (threadIdx.x >= 32) return;
  const int lane = threadIdx.x, chunks = (vocab + kChunkLen - 1) / kChunkLen;
  const ChunkSummary* cs = reinterpret_cast<const ChunkSummary*>(work + static_cast<int64_t>(row) * vocab);
  float mx = -INFINITY, bv = -INFINITY;
  int bi = INT_MAX;
  for (int c = lane; c < chunks; c += 32) {
    mx = fmaxf(mx, cs[c].max);
    if (cs[c].pick > bv || (cs[c].pick == bv && cs[c].id < bi)) {
      bv = cs[c].pick;
      bi = cs[c].id;
    }
  }
  mx = warp_max(mx);
  warp_argmax(bv, bi);
  double se = 0.0;
  for (int c = lane; c < chunks; c += 32)
    if (cs[c].max != -INFINITY) se += static_cast<double>(cs[c].sum) * exp(static_cast<double>(cs[c].max) - mx);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) se += __shfl_xor_sync(0xffffffffu, se, o);
  if (lane != 0) return;
  const double lse = mx == -INFINITY ? -INFINITY : mx + log(se);
  // No pick above -inf (every logit -inf): reported as no token, as the one-block path does.
  const bool none = bi < 0 || bi >= vocab || bv == -INFINITY;
  out.tokens[row] = none ? -1 : bi;
  out.logprobs[row] = none ? 0.0f : static_cast<float>(raw[bi] - lse);
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits, float* work, int vocab, const SampleRowParams* params, const PenaltyToken* pen,
                  SampleOutputs out) {
  pdl_wait();
  __shared__ double ds[32];
  __shared__ float fs[32];
  __shared__ int is[32];
  const int row = blockIdx.x;
  const SampleRowParams p = params[row];
  const float* raw = logits + static_cast<int64_t>(row) * vocab;  // [vocab]
  float* w = work + static_cast<int64_t>(row) * vocab;            // [vocab]
  if (plain_row(p, vocab)) {                                      // summarised by sample_chunks_kernel
    merge_chunks(row, raw, work, vocab, out);
    return;
  }

  // log-sum-exp of the raw row (double, like the CPU).
  float mx_raw;
  int dummy;
  block_argmax(
      vocab, [&](int i) { return raw[i]; }, fs, is, &mx_raw, &dummy);
  // fp32 terms (each in (0, 1]) summed per thread, then across the block in double.
  float sef = 0.0f;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    float v = raw[i];
    w[i] = v;
    sef += __expf(v - mx_raw);
  }
  double se = block_sum_d(static_cast<double>(sef), ds);
  const double lse = mx_raw == -INFINITY ? -INFINITY : mx_raw + log(se);

  if (p.num_logprobs > 0) {
    int prev[kMaxTopLogprobs];
    const int n = min(min(p.num_logprobs, kMaxTopLogprobs), vocab);
    for (int j = 0; j < n; ++j) {
      float bv;
      int bi;
      block_argmax(
          vocab,
          [&](int i) {
            for (int q = 0; q < j; ++q)
              if (prev[q] == i) return -INFINITY;
            return raw[i];
          },
          fs, is, &bv, &bi);
      prev[j] = bi;
      if (threadIdx.x == 0) {
        out.top_ids[row * kMaxTopLogprobs + j] = bi;
        out.top_logprobs[row * kMaxTopLogprobs + j] = static_cast<float>(bv - lse);
      }
    }
  }
  __syncthreads();
  // Banned tokens, logit bias and penalties, one thread per distinct token.
  for (int e = p.penalty_begin + threadIdx.x; e < p.penalty_end; e += kThreads) {
    PenaltyToken pt = pen[e];
    float v = w[pt.token];
    if (pt.banned) {
      v = -INFINITY;
    } else {
      v += pt.bias;
      if (p.repetition_penalty != 1.0f && pt.seen) v = v > 0.0f ? v / p.repetition_penalty : v * p.repetition_penalty;
      if (pt.output_count > 0 && (p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f))
        v -= p.frequency_penalty * static_cast<float>(pt.output_count) + p.presence_penalty;
    }
    w[pt.token] = v;
  }
  __syncthreads();

  int chosen = -1;
  float bv;
  if (p.temperature <= 0.0f) {
    block_argmax(
        vocab, [&](int i) { return w[i]; }, fs, is, &bv, &chosen);
  } else {
    const float inv_t = 1.0f / p.temperature;
    for (int i = threadIdx.x; i < vocab; i += kThreads) w[i] *= inv_t;
    __syncthreads();
    float mx;
    int top_id;
    block_argmax(
        vocab, [&](int i) { return w[i]; }, fs, is, &mx, &top_id);
    if (mx != -INFINITY) {
      if (p.min_p > 0.0f) {
        for (int i = threadIdx.x; i < vocab; i += kThreads)
          if (expf(w[i] - mx) < p.min_p) w[i] = -INFINITY;
        __syncthreads();
      }
      int kept = 0;
      for (int i = threadIdx.x; i < vocab; i += kThreads) kept += w[i] != -INFINITY;
      kept = block_count(kept, ds);
      if (p.top_k > 0 && p.top_k < kept) {
        uint32_t prefix = 0;
        for (int bit = 31; bit >= 0; --bit) {
          uint32_t cand = prefix | (1u << bit);
          int c = 0;
          for (int i = threadIdx.x; i < vocab; i += kThreads) c += (w[i] != -INFINITY && fkey(w[i]) >= cand);
          if (block_count(c, ds) >= p.top_k) prefix = cand;
        }
        for (int i = threadIdx.x; i < vocab; i += kThreads)
          if (fkey(w[i]) < prefix) w[i] = -INFINITY;
        __syncthreads();
        kept = 0;
        for (int i = threadIdx.x; i < vocab; i += kThreads) kept += w[i] != -INFINITY;
        kept = block_count(kept, ds);
      }
      if (p.top_p < 1.0f && kept > 1) {
        double total = 0.0;
        for (int i = threadIdx.x; i < vocab; i += kThreads)
          total += w[i] != -INFINITY ? exp(static_cast<double>(w[i]) - mx) : 0.0;
        total = block_sum_d(total, ds);
        const double cut = (1.0 - static_cast<double>(p.top_p)) * total;
        // c*: the largest key whose strictly-smaller mass is <= cut.
        uint32_t prefix = 0;
        for (int bit = 31; bit >= 0; --bit) {
          uint32_t cand = prefix | (1u << bit);
          double m = 0.0;
          for (int i = threadIdx.x; i < vocab; i += kThreads)
            if (w[i] != -INFINITY && fkey(w[i]) < cand) m += exp(static_cast<double>(w[i]) - mx);
          if (block_sum_d(m, ds) <= cut) prefix = cand;
        }
        double below = 0.0;
        int group = 0;
        for (int i = threadIdx.x; i < vocab; i += kThreads) {
          if (w[i] == -INFINITY) continue;
          uint32_t kk = fkey(w[i]);
          if (kk < prefix) below += exp(static_cast<double>(w[i]) - mx);
          group += kk == prefix;
        }
        below = block_sum_d(below, ds);
        group = block_count(group, ds);
        // The boundary group (equal logits) goes in descending id order: drop
        // the n_drop highest ids whose cumulative mass stays <= cut.
        int id_cut = 0x7fffffff;
        if (group > 0) {
          float gv = __uint_as_float((prefix & 0x80000000u) ? (prefix & 0x7fffffffu) : ~prefix);
          double pg = exp(static_cast<double>(gv) - mx);
          int n_drop = static_cast<int>(floor((cut - below) / pg));
          n_drop = max(0, min(n_drop, group));
          if (n_drop > 0) {
            int idp = 0;
            for (int bit = 30; bit >= 0; --bit) {
              int cand = idp | (1 << bit);
              int c = 0;
              for (int i = threadIdx.x; i < vocab; i += kThreads) c += (fkey(w[i]) == prefix && i >= cand);
              if (block_count(c, ds) >= n_drop) idp = cand;
            }
            id_cut = idp;
          }
        }
        for (int i = threadIdx.x; i < vocab; i += kThreads) {
          if (i == top_id || w[i] == -INFINITY) continue;
          uint32_t kk = fkey(w[i]);
          if (kk < prefix || (kk == prefix && i >= id_cut)) w[i] = -INFINITY;
        }
        __syncthreads();
      }
      block_argmax(
          vocab,
          [&](int i) {
            float v = w[i];
            if (v == -INFINITY) return -INFINITY;
            float u = philox_uniform(p.seed, p.step, static_cast<uint64_t>(i));
            return v - logf(-logf(u));
          },
          fs, is, &bv, &chosen);
    }
  }
  if (threadIdx.x == 0) {
    // chosen stays -1 (0x7fffffff) when every token is banned: reported to the caller.
    bool none = chosen < 0 || chosen >= vocab || w[chosen] == -INFINITY;
    out.tokens[row] = none ? -1 : chosen;
    out.logprobs[row] = none ? 0.0f : static_cast<float>(raw[chosen] - lse);
  }
}

}  // namespace

void launch_sample(const float* logits, float* work, int num_rows, int vocab, const SampleRowParams* params,
                   const PenaltyToken* penalties, SampleOutputs out, cudaStream_t stream) {
  if (num_rows == 0) return;
  const int chunks = (vocab + kChunkLen - 1) / kChunkLen;
  // Both kernels launch whatever the rows are, so a captured decode graph
  // serves any mix (a step without plain rows pays one launch whose blocks
  // return at once). A row's scratch holds its chunks' summaries.
  static_assert(sizeof(ChunkSummary) == 4 * sizeof(float) && kChunkLen >= 4, "summaries fit in the row's scratch");
  launch_pdl(sample_chunks_kernel, dim3(chunks, num_rows), kChunkThreads, 0, stream, logits, work, vocab, params);
  BATON_LAUNCH_CHECK();
  launch_pdl(sample_kernel, num_rows, kThreads, 0, stream, logits, work, vocab, params, penalties, out);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda

// The decode-chain lab (decode_chain.h). A chain is a model's linears for
// every layer at one token, as stages: each stage reads the one before's
// output, so stage i + 1 may start only when all of stage i has been written.
// The forms:
//   graph          one kernel a stage, captured in a CUDA graph, launched
//                  the ordinary way (each kernel's launch and ramp in turn);
//   graph-pdl-top  the same by programmatic launch, the next kernel let in at
//                  the top of this one (the tree's small decode kernels);
//   graph-pdl-end  let in at the end (the tree's bf16 one-row GEMVs, kLate);
//   graph-4-blocks-an-sm  the plain graph with each kernel's registers capped
//                  for 4 blocks an SM (64 a thread);
//   persistent     one cooperative kernel for the whole chain, a grid
//                  barrier between stages, each block copying the stage's
//                  input to shared memory after the barrier;
//   persistent-pfN the same, each warp first asking L2 (one bulk prefetch a
//                  row) for N bytes of each row it reads first in the next
//                  stage, so the barrier's wait overlaps the stage's ramp;
//   ceiling        the persistent kernel with no grid barrier: what the
//                  barriers cost (its outputs race, so they are not checked).
// Every form computes each output with warp_outputs (gemv.cuh) in the same
// order, so a correct form's outputs equal the first's bit for bit.
#include <cooperative_groups.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/fp8_kernels.h"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/kernels.h"
#include "tools/gpu_lab/decode_chain.h"
#include "tools/gpu_profile/profile_ceilings.h"

namespace baton::cuda {
namespace {

namespace cg = cooperative_groups;
constexpr int kWarps = skinny::kWarpsPerBlock;
constexpr int kThreads = 32 * kWarps;
constexpr int kMaxGroups = 8;  // experts a token (Qwen3-30B-A3B's top 8)

// One stage: `groups` linears of the same shape (a token's experts), or a
// combine (y = the sum of the groups' rows of x, fp32, rounded to bf16).
// x holds the groups' inputs x_stride elements apart (a linear's: 0, one
// input for all, or k; a combine's: n),
// y their outputs y_stride apart; each group's weight is [gated ? 2n : n, k].
struct Stage {
  int n = 0, k = 0, groups = 1;
  bool gated = false, combine = false;
  const bf16* x = nullptr;
  int x_stride = 0;
  bf16* y = nullptr;
  int y_stride = 0;
  const void* w[kMaxGroups] = {};
  const float* scales[kMaxGroups] = {};
};

__host__ __device__ int stage_warps(const Stage& s) {
  return s.combine ? 0 : s.groups * skinny::warps_for(s.n, s.gated);
}
// Bytes of x a block copies to shared memory in the persistent forms.
int stage_x_bytes(const Stage& s) { return (s.x_stride != 0 ? s.groups : 1) * s.k * 2; }

// The linear's outputs of warps warp, warp + stride, ...; x from x_base
// (global memory, or the block's shared copy).
template <bool kFp8, bool kGated, bool kXShared>
__device__ __forceinline__ void linear_warps(const Stage* s, const bf16* x_base, int warp, int stride) {
  const int n = s->n, k = s->k, per_group = skinny::warps_for(n, kGated), total = s->groups * per_group;
  for (int w = warp; w < total; w += stride) {
    const int g = w / per_group;
    const bf16* x_rows[1] = {x_base + static_cast<int64_t>(g) * (s->x_stride != 0 ? k : 0)};
    bf16* y_rows[1] = {s->y + static_cast<int64_t>(g) * s->y_stride};
    const skinny::Weight wt{s->w[g], s->scales[g], skinny::kScaleGroupCols, k / skinny::kScaleGroupCols};
    skinny::warp_outputs<kFp8, 1, bf16, kGated, kXShared>(w - g * per_group, x_rows, wt, y_rows, n, k);
  }
}

// y[i] = bf16(sum over groups of x[g][i]); x through L2 (written by other
// blocks in the same launch in the persistent forms).
__device__ __forceinline__ void combine_threads(const Stage* s, int thread, int stride) {
  for (int i = thread; i < s->n; i += stride) {
    float acc = 0.0f;
    for (int g = 0; g < s->groups; ++g)
      acc += __bfloat162float(__ldcg(s->x + static_cast<int64_t>(g) * s->x_stride + i));
    s->y[i] = __float2bfloat16(acc);
  }
}

// ---- the graph forms: a kernel a stage ----
// The stage comes as a kernel parameter, as the tree's kernels take their
// pointers, so no kernel waits on a load before its first weight load.

// kMinBlocks: blocks an SM that ptxas must leave room for (1: its choice;
// 4 caps a thread at 64 registers, the bf16 GEMVs' count, where the e4m3
// ones take up to 92: session 18's untested lead for FP8's step).
template <bool kFp8, bool kGated, bool kLate, int kMinBlocks = 1>
__global__ void __launch_bounds__(kThreads, kMinBlocks) stage_kernel(const __grid_constant__ Stage s) {
  pdl_wait<!kLate>();
  linear_warps<kFp8, kGated, false>(&s, s.x, blockIdx.x * kWarps + (threadIdx.x >> 5), gridDim.x * kWarps);
  if constexpr (kLate) pdl_trigger();
}

template <bool kLate>
__global__ void __launch_bounds__(kThreads) combine_kernel(const __grid_constant__ Stage s) {
  pdl_wait<!kLate>();
  combine_threads(&s, blockIdx.x * kThreads + threadIdx.x, gridDim.x * kThreads);
  if constexpr (kLate) pdl_trigger();
}

enum class GraphForm { kPlain, kPdlTop, kPdlEnd, kPlain4Blocks };

template <bool kFp8, bool kLate, int kMinBlocks = 1>
void launch_stage(const Stage& h, bool pdl, cudaStream_t stream) {
  const dim3 block(kThreads);
  auto go = [&](auto kernel, int blocks) {
    if (pdl) launch_pdl(kernel, dim3(blocks), block, 0, stream, h);
    else kernel<<<blocks, block, 0, stream>>>(h);
  };
  if (h.combine) go(combine_kernel<kLate>, (h.n + kThreads - 1) / kThreads);
  else if (h.gated) go(stage_kernel<kFp8, true, kLate, kMinBlocks>, (stage_warps(h) + kWarps - 1) / kWarps);
  else go(stage_kernel<kFp8, false, kLate, kMinBlocks>, (stage_warps(h) + kWarps - 1) / kWarps);
}

// ---- the persistent forms: one cooperative kernel a chain ----

// This warp's first rows of the next stage, asked of L2: up to `bytes` a row.
template <bool kFp8>
__device__ __forceinline__ void prefetch_first_rows(const Stage* s, int warp, int bytes) {
  const int lane = threadIdx.x & 31;
  if (s->combine || lane >= skinny::kRows || warp >= stage_warps(*s)) return;
  const int per_group = skinny::warps_for(s->n, s->gated), g = warp / per_group, local = warp - g * per_group;
  const int row = s->gated ? local + lane * s->n : min(local * skinny::kRows + lane, s->n - 1);
  const int row_bytes = s->k * (kFp8 ? 1 : 2);
  const unsigned size = static_cast<unsigned>(min(bytes, row_bytes)) & ~15u;
  const char* p = static_cast<const char*>(s->w[g]) + static_cast<int64_t>(row) * row_bytes;
  if (size > 0) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(size) : "memory");
}

template <bool kFp8, bool kGridBarrier>
__global__ void __launch_bounds__(kThreads) persistent_kernel(const Stage* stages, int count, int prefetch_bytes) {
  extern __shared__ uint4 xs_chunks[];
  const int warp = blockIdx.x * kWarps + (threadIdx.x >> 5), warps = gridDim.x * kWarps;
  for (int i = 0; i < count; ++i) {
    const Stage* s = stages + i;
    if (s->combine) {
      combine_threads(s, blockIdx.x * kThreads + threadIdx.x, gridDim.x * kThreads);
    } else {
      // The stage's input, written by other blocks before the barrier: through L2.
      const int chunks = (s->x_stride != 0 ? s->groups : 1) * s->k / 8;
      const uint4* src = reinterpret_cast<const uint4*>(s->x);
      for (int c = threadIdx.x; c < chunks; c += kThreads) xs_chunks[c] = __ldcg(src + c);
      __syncthreads();
      const bf16* xs = reinterpret_cast<const bf16*>(xs_chunks);
      if (s->gated) linear_warps<kFp8, true, true>(s, xs, warp, warps);
      else linear_warps<kFp8, false, true>(s, xs, warp, warps);
    }
    if (i + 1 == count) break;
    if (prefetch_bytes > 0) prefetch_first_rows<kFp8>(s + 1, warp, prefetch_bytes);
    if constexpr (kGridBarrier) cg::this_grid().sync();
    else __syncthreads();  // the shared copy only
  }
}

// ---- the chains ----

struct Shape {
  int n, k, groups;
  bool gated, combine;
};

// A layer's stages and the number of layers. Activation buffers (elements):
// act [hidden], qkv [qkv_out], o [hidden], router [128], gu [groups, inter],
// down [groups, hidden].
struct ChainShape {
  int layers = 0, hidden = 0, qkv_out = 0, attn = 0, inter = 0, experts = 0;  // experts 0: dense
};

Result<ChainShape> chain_shape(const std::string& model) {
  if (model == "llama") return ChainShape{32, 4096, 6144, 4096, 14336, 0};   // Llama-3.1-8B
  if (model == "qwen3moe") return ChainShape{48, 2048, 5120, 4096, 768, 8};  // Qwen3-30B-A3B, top 8
  return invalid_argument("decode chain: unknown model '{}' (llama, qwen3moe)", model);
}

// Device memory carved from one allocation, 256-byte aligned.
class Arena {
 public:
  Status allocate(size_t bytes) { return buf_.allocate(bytes); }
  template <typename T>
  T* take(size_t count) {
    const size_t at = used_;
    used_ += (count * sizeof(T) + 255) / 256 * 256;
    BATON_CHECK(used_ <= buf_.bytes(), "decode chain: arena overrun");
    return reinterpret_cast<T*>(static_cast<char*>(buf_.get()) + at);
  }
  static size_t rounded(size_t bytes) { return (bytes + 255) / 256 * 256; }
  void* get() const { return buf_.get(); }
  size_t size() const { return buf_.bytes(); }

 private:
  DeviceBuffer buf_;
  size_t used_ = 0;
};

size_t weight_alloc_bytes(int rows, int k, bool fp8) {
  if (!fp8) return Arena::rounded(size_t{2} * rows * k);
  const int scale_rows = (rows + 127) / 128;
  return Arena::rounded(size_t{1} * rows * k) + Arena::rounded(size_t{4} * scale_rows * (k / 128));
}

// The model's weights and activations, and its stages on the host.
struct Chain {
  Arena weights, acts;
  std::vector<Stage> stages;
  double weight_bytes = 0;
};

Status build_chain(const ChainShape& c, bool fp8, cudaStream_t stream, Chain& chain) {
  const bool moe = c.experts > 0;
  const int groups = moe ? c.experts : 1;
  // Per layer: qkv [qkv_out, hidden], o [hidden, attn], (moe: router [128, hidden]),
  // groups x gate/up [2 inter, hidden], groups x down [hidden, inter].
  const size_t per_layer = weight_alloc_bytes(c.qkv_out, c.hidden, fp8) + weight_alloc_bytes(c.hidden, c.attn, fp8) +
                           (moe ? weight_alloc_bytes(128, c.hidden, fp8) : 0) +
                           groups * (weight_alloc_bytes(2 * c.inter, c.hidden, fp8) +
                                     weight_alloc_bytes(c.hidden, c.inter, fp8));
  BATON_RETURN_IF_ERROR(chain.weights.allocate(per_layer * c.layers));
  const size_t act_elems = static_cast<size_t>(c.hidden) + c.qkv_out + c.hidden + 128 +
                           static_cast<size_t>(groups) * c.inter + static_cast<size_t>(groups) * c.hidden;
  BATON_RETURN_IF_ERROR(chain.acts.allocate(Arena::rounded(2 * act_elems) + 6 * 256));
  bf16* act = chain.acts.take<bf16>(c.hidden);
  bf16* qkv = chain.acts.take<bf16>(c.qkv_out);
  bf16* o = chain.acts.take<bf16>(c.hidden);
  bf16* router = chain.acts.take<bf16>(128);
  bf16* gu = chain.acts.take<bf16>(static_cast<size_t>(groups) * c.inter);
  bf16* down = chain.acts.take<bf16>(static_cast<size_t>(groups) * c.hidden);
  uint64_t seed = 100;
  // A weight [rows, k], random and scaled so that a linear keeps its input's
  // variance; its scales (e4m3) in the same arena.
  auto weight = [&](int rows, int k, const void*& w, const float*& scales) {
    const float scale = std::sqrt(3.0f / k);
    if (!fp8) {
      bf16* p = chain.weights.take<bf16>(static_cast<size_t>(rows) * k);
      launch_fill_random(p, static_cast<int64_t>(rows) * k, scale, seed++, stream);
      w = p;
      scales = nullptr;
    } else {
      uint8_t* p = chain.weights.take<uint8_t>(static_cast<size_t>(rows) * k);
      const int64_t count = static_cast<int64_t>((rows + 127) / 128) * (k / 128);
      float* s = chain.weights.take<float>(count);
      launch_fp8_fill_random(p, static_cast<int64_t>(rows) * k, seed++, stream);
      launch_fill_const_f32(s, count, scale / 448.0f, stream);
      w = p;
      scales = s;
    }
    chain.weight_bytes += double(rows) * k * (fp8 ? 1 : 2) + (fp8 ? 4.0 * ((rows + 127) / 128) * (k / 128) : 0.0);
  };
  for (int l = 0; l < c.layers; ++l) {
    Stage qkv_s{c.qkv_out, c.hidden, 1, false, false, act, 0, qkv, 0};
    weight(c.qkv_out, c.hidden, qkv_s.w[0], qkv_s.scales[0]);
    Stage o_s{c.hidden, c.attn, 1, false, false, qkv, 0, o, 0};
    weight(c.hidden, c.attn, o_s.w[0], o_s.scales[0]);
    chain.stages.push_back(qkv_s);
    chain.stages.push_back(o_s);
    if (moe) {
      Stage r_s{128, c.hidden, 1, false, false, o, 0, router, 0};
      weight(128, c.hidden, r_s.w[0], r_s.scales[0]);
      chain.stages.push_back(r_s);
    }
    Stage gu_s{c.inter, c.hidden, groups, true, false, o, 0, gu, c.inter};
    Stage down_s{c.hidden, c.inter, groups, false, false, gu, moe ? c.inter : 0, moe ? down : act, c.hidden};
    for (int g = 0; g < groups; ++g) {
      weight(2 * c.inter, c.hidden, gu_s.w[g], gu_s.scales[g]);
      weight(c.hidden, c.inter, down_s.w[g], down_s.scales[g]);
    }
    chain.stages.push_back(gu_s);
    chain.stages.push_back(down_s);
    if (moe) chain.stages.push_back(Stage{c.hidden, 0, groups, false, true, down, c.hidden, act, 0});
  }
  return cuda_status(cudaStreamSynchronize(stream), "decode chain: weights");
}

// ---- timing ----

// The median of reps event-timed runs of fn (median_call_ms, after 3
// untimed), in us; fn's first failure is returned instead.
template <typename Fn>
Result<double> median_us(cudaStream_t s, Fn&& fn, int reps) {
  Status failed = Status::ok();
  const double ms = median_call_ms(3, reps, s, [&](int) {
    if (failed.is_ok()) failed = fn();
  });
  BATON_RETURN_IF_ERROR(failed);
  return ms * 1e3;
}

int registers_of(const void* kernel) {
  cudaFuncAttributes a{};
  return cudaFuncGetAttributes(&a, kernel) == cudaSuccess ? a.numRegs : 0;
}

// Runs the chain's forms for one dtype and appends their rows.
template <bool kFp8>
Status run_forms(const std::string& model, const ChainOptions& opt, double copy_gbps, cudaStream_t stream,
                 std::vector<ChainRow>& rows) {
  BATON_ASSIGN_OR_RETURN(const ChainShape shape, chain_shape(model));
  Chain chain;
  BATON_RETURN_IF_ERROR(build_chain(shape, kFp8, stream, chain));
  const int count = static_cast<int>(chain.stages.size());
  DeviceBuffer d_stages;
  BATON_RETURN_IF_ERROR(d_stages.allocate(sizeof(Stage) * count));
  BATON_CUDA_RETURN(cudaMemcpy(d_stages.get(), chain.stages.data(), sizeof(Stage) * count, cudaMemcpyHostToDevice));
  const Stage* ds = d_stages.as<Stage>();
  std::vector<uint8_t> reference, out(chain.acts.size());
  // Fills the activations the same way before a checked run.
  auto reset_acts = [&] {
    launch_fill_random(static_cast<bf16*>(chain.acts.get()), int64_t(chain.acts.size() / 2), 1.0f, 7, stream);
  };
  auto add_row = [&](const std::string& form, int grid, int regs, double us, const std::string& check) {
    ChainRow r;
    r.model = model;
    r.dtype = kFp8 ? "e4m3" : "bf16";
    r.form = form;
    r.stages = count;
    r.grid = grid;
    r.registers = regs;
    r.weight_bytes = chain.weight_bytes;
    r.step_us = us;
    r.gbps = chain.weight_bytes / (us * 1e-6) / 1e9;
    r.of_copy = r.gbps / copy_gbps;
    r.check = check;
    rows.push_back(r);
  };
  // Runs fn once from the reset activations and compares them after with the first form's.
  auto check = [&](auto&& fn) -> Result<std::string> {
    reset_acts();
    BATON_RETURN_IF_ERROR(fn());
    BATON_CUDA_RETURN(cudaStreamSynchronize(stream));
    BATON_CUDA_RETURN(cudaMemcpy(out.data(), chain.acts.get(), out.size(), cudaMemcpyDeviceToHost));
    if (reference.empty()) {
      reference = out;
      return std::string("reference");
    }
    return std::string(std::memcmp(out.data(), reference.data(), out.size()) == 0 ? "bit-equal" : "DIFFERS");
  };

  const std::pair<GraphForm, const char*> graph_forms[] = {{GraphForm::kPlain, "graph"},
                                                           {GraphForm::kPdlTop, "graph-pdl-top"},
                                                           {GraphForm::kPdlEnd, "graph-pdl-end"},
                                                           {GraphForm::kPlain4Blocks, "graph-4-blocks-an-sm"}};
  // Registers a thread of a form's linear kernels (gated and not), the larger.
  auto graph_registers = [](GraphForm form) {
    auto larger = [](auto gated, auto plain) {
      return std::max(registers_of(reinterpret_cast<const void*>(gated)),
                      registers_of(reinterpret_cast<const void*>(plain)));
    };
    if (form == GraphForm::kPdlEnd) return larger(stage_kernel<kFp8, true, true>, stage_kernel<kFp8, false, true>);
    if (form == GraphForm::kPlain4Blocks)
      return larger(stage_kernel<kFp8, true, false, 4>, stage_kernel<kFp8, false, false, 4>);
    return larger(stage_kernel<kFp8, true, false>, stage_kernel<kFp8, false, false>);
  };
  for (const auto& [form, name] : graph_forms) {
    cudaGraph_t graph = nullptr;
    BATON_CUDA_RETURN(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < count; ++i) {
      if (form == GraphForm::kPdlEnd) launch_stage<kFp8, true>(chain.stages[i], true, stream);
      else if (form == GraphForm::kPlain4Blocks) launch_stage<kFp8, false, 4>(chain.stages[i], false, stream);
      else launch_stage<kFp8, false>(chain.stages[i], form == GraphForm::kPdlTop, stream);
    }
    BATON_CUDA_RETURN(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    BATON_CUDA_RETURN(inst);
    auto replay = [&]() -> Status { return cuda_status(cudaGraphLaunch(exec, stream), "graph launch"); };
    auto checked = check(replay);
    auto us = median_us(stream, replay, opt.reps);
    cudaGraphExecDestroy(exec);
    BATON_RETURN_IF_ERROR(checked.status());
    BATON_RETURN_IF_ERROR(us.status());
    add_row(name, 0, graph_registers(form), *us, *checked);
  }

  int smem = 0;
  for (const Stage& s : chain.stages)
    if (!s.combine) smem = std::max(smem, stage_x_bytes(s));
  int device = 0, sms = 0;
  BATON_CUDA_RETURN(cudaGetDevice(&device));
  BATON_CUDA_RETURN(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  auto persistent = [&](auto kernel, const std::string& form, int blocks_per_sm, int prefetch,
                        bool checked_form) -> Status {
    int fit = 0;
    BATON_CUDA_RETURN(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kernel, kThreads, smem));
    if (fit == 0) return invalid_argument("decode chain: {} does not fit an SM", form);
    const int per_sm = blocks_per_sm > 0 ? std::min(blocks_per_sm, fit) : fit;
    const dim3 grid(sms * per_sm), block(kThreads);
    const Stage* stages_arg = ds;
    int count_arg = count, prefetch_arg = prefetch;
    void* args[] = {&stages_arg, &count_arg, &prefetch_arg};
    auto launch = [&]() -> Status {
      return cuda_status(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), grid, block, args,
                                                     static_cast<size_t>(smem), stream),
                         "cooperative launch");
    };
    std::string verdict = "not checked";
    if (checked_form) {
      BATON_ASSIGN_OR_RETURN(verdict, check(launch));
    }
    BATON_ASSIGN_OR_RETURN(const double us, median_us(stream, launch, opt.reps));
    add_row(form + (blocks_per_sm > 0 ? "-" + std::to_string(per_sm) + "b" : ""), grid.x,
            registers_of(reinterpret_cast<const void*>(kernel)), us, verdict);
    return Status::ok();
  };
  for (int bps : opt.blocks_per_sm) {
    BATON_RETURN_IF_ERROR(persistent(persistent_kernel<kFp8, true>, "persistent", bps, 0, true));
    for (int pf : opt.prefetch_bytes)
      if (pf > 0)
        BATON_RETURN_IF_ERROR(
            persistent(persistent_kernel<kFp8, true>, "persistent-pf" + std::to_string(pf), bps, pf, true));
  }
  return persistent(persistent_kernel<kFp8, false>, "ceiling", 0, 0, false);
}

}  // namespace

Result<ChainReport> run_decode_chain(const ChainOptions& options) {
  ChainReport report;
  cudaDeviceProp prop;
  BATON_CUDA_RETURN(cudaGetDeviceProperties(&prop, 0));
  report.device = prop.name;
  if (!prop.cooperativeLaunch) return failed_precondition("decode chain: {} has no cooperative launch", prop.name);
  cudaStream_t stream = nullptr;
  BATON_CUDA_RETURN(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  Status status = [&]() -> Status {
    {  // the ceiling: a 2 GiB device copy, read + write
      const size_t bytes = size_t{2} << 30;
      DeviceBuffer a, b;
      BATON_RETURN_IF_ERROR(a.allocate(bytes));
      BATON_RETURN_IF_ERROR(b.allocate(bytes));
      launch_fill_random(a.as<bf16>(), int64_t(bytes / 2), 1.0f, 1, stream);
      BATON_ASSIGN_OR_RETURN(
          const double us,
          median_us(
              stream,
              [&]() -> Status {
                return cuda_status(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, stream), "copy");
              },
              options.reps));
      report.copy_gbps = 2.0 * bytes / (us * 1e-6) / 1e9;
    }
    for (const std::string& model : options.models) {
      for (const std::string& dtype : options.dtypes) {
        if (dtype == "bf16")
          BATON_RETURN_IF_ERROR(run_forms<false>(model, options, report.copy_gbps, stream, report.rows));
        else if (dtype == "e4m3")
          BATON_RETURN_IF_ERROR(run_forms<true>(model, options, report.copy_gbps, stream, report.rows));
        else return invalid_argument("decode chain: unknown dtype '{}' (bf16, e4m3)", dtype);
      }
    }
    return Status::ok();
  }();
  cudaStreamDestroy(stream);
  if (!status.is_ok()) return status;
  return report;
}

}  // namespace baton::cuda

#include "tools/gpu_profile/cuda_profile.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <numeric>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mla_prefill.h"
#include "backend/cuda/nccl_communicator.h"
#include "model/presets.h"
#include "model/yarn.h"
#include "tools/gpu_profile/kernel_cost_batches.h"
#include "tools/gpu_profile/linear_timings.h"
#include "tools/gpu_profile/model_counts.h"
#include "tools/gpu_profile/profile_ceilings.h"
#include "tools/gpu_profile/profile_report.h"
#include "tools/gpu_profile/step_anatomy.h"
#include "tools/gpu_profile/step_builder.h"
#include "tools/gpu_profile/step_kernels.h"
#include "tools/gpu_profile/tp_profile.h"

namespace baton::cuda {
namespace {

constexpr int kBlockSize = 16;
// A decode row's untimed steps last at least this long, besides their count
// (3 steps can be 20 ms). The card's clock dips under its power limit when a
// model's weights are made (H100: 1470 MHz for ~100 ms, then 1845, 1965):
// Llama-3.1-8B's first batch-1 row after Qwen3-30B-A3B's in one process read
// 6.43 ms a step where the same row a moment later read 5.51; warmed up this
// long, 5.51 and 5.52 (session 32, two runs each).
constexpr double kDecodeWarmupMs = 250;

// The kernels' view of the backend's KV cache.
KvDev kv_dev_of(const KvMemory& kvm) {
  KvDev d;
  d.base = static_cast<bf16*>(kvm.base);
  d.block_elems = kvm.layout.block_elems();
  d.layer_block_elems = kvm.layout.layer_block_elems();
  d.half_elems = kvm.layout.half_layer_block_elems();
  d.token_elems = kvm.layout.token_elems();
  d.block_size = kvm.layout.block_size;
  return d;
}

// Whether the backend runs this MLA step's attention in the expanded form
// (cuda_mla_layer.cpp's rule; the keys fit the workspace at the profile's sizes).
bool mla_expands(const ModelConfig& c, int q_len) {
  return c.is_mla() && c.mla.q_lora_rank > 0 && q_len >= kMlaExpandMinTokens &&
         mla_expanded_supports(c.mla.qk_nope_head_dim, c.mla.qk_rope_head_dim, c.mla.v_head_dim);
}

// One layer's attention in MLA's expanded form, as the backend runs it: plan,
// latent gather from the backend's KV cache, the kv_b_proj expansion GEMM and
// the attention kernel; the kernel's share in *kernel_ms. One sequence of q_len
// new tokens, no cached prefix.
Result<double> time_mla_expanded_ms(const ModelConfig& c, const KvMemory& kvm, int q_len, cudaStream_t stream,
                                    double* kernel_ms) {
  const int nb = (q_len + kBlockSize - 1) / kBlockSize, nh = c.num_heads, rank = c.mla.kv_lora_rank;
  if (nb > kvm.layout.num_blocks) return failed_precondition("KV too small");
  const int64_t latent = c.mla.latent_dim(), cols = int64_t{nh} * (c.mla.qk_nope_head_dim + c.mla.v_head_dim);
  std::vector<int32_t> head = {0, q_len, q_len}, bt(nb);  // query_start, seq_lens
  std::iota(bt.begin(), bt.end(), 0);
  DeviceBuffer q, out, lat, kv, kv_b, dhead, dbt, plan;
  BATON_RETURN_IF_ERROR(q.allocate(size_t{2} * q_len * nh * c.mla.qk_head_dim()));
  BATON_RETURN_IF_ERROR(out.allocate(size_t{2} * q_len * nh * c.mla.v_head_dim));
  BATON_RETURN_IF_ERROR(lat.allocate(size_t{2} * q_len * latent));
  BATON_RETURN_IF_ERROR(kv.allocate(size_t{2} * q_len * cols));
  BATON_RETURN_IF_ERROR(kv_b.allocate(size_t{2} * cols * rank));
  BATON_RETURN_IF_ERROR(plan.allocate(size_t{4} * mla_expanded_plan_ints(q_len, 1)));
  launch_fill_random(q.as<bf16>(), int64_t{q_len} * nh * c.mla.qk_head_dim(), 1.0f, 5, stream);
  launch_fill_random(kv_b.as<bf16>(), cols * rank, 0.05f, 6, stream);
  auto up = [&](DeviceBuffer& d, const std::vector<int32_t>& v) -> Status {
    BATON_RETURN_IF_ERROR(d.allocate(v.size() * 4));
    return cuda_status(cudaMemcpy(d.get(), v.data(), v.size() * 4, cudaMemcpyHostToDevice), "upload");
  };
  BATON_RETURN_IF_ERROR(up(dhead, head));
  BATON_RETURN_IF_ERROR(up(dbt, bt));
  Gemm gemm;
  BATON_RETURN_IF_ERROR(gemm.init());
  MlaExpandedStep st;
  st.q = q.as<bf16>();
  st.out = out.as<bf16>();
  st.kv = kv_dev_of(kvm);
  st.query_start = dhead.as<int32_t>();
  st.seq_lens = st.query_start + 2;
  st.block_tables = dbt.as<int32_t>();
  st.max_blocks_per_seq = nb;
  st.num_seqs = 1;
  st.num_tokens = q_len;
  st.total_keys = q_len;
  st.kv_b = kv_b.as<bf16>();
  st.num_heads = nh;
  st.kv_lora_rank = rank;
  st.scale = static_cast<float>(attention_softmax_scale(c));
  st.latent_rows = lat.as<bf16>();
  st.kv_rows = kv.as<bf16>();
  st.plan = plan.as<int32_t>();
  cudaEvent_t e0, e1, e2;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaEventCreate(&e2);
  std::vector<double> all, kernel;
  for (int it = 0; it < 8; ++it) {
    cudaEventRecord(e0, stream);
    launch_mla_expanded_attention(st, gemm, stream, e1);
    cudaEventRecord(e2, stream);
    BATON_CUDA_RETURN(cudaEventSynchronize(e2));
    float ms_all = 0, ms_kernel = 0;
    cudaEventElapsedTime(&ms_all, e0, e2);
    cudaEventElapsedTime(&ms_kernel, e1, e2);
    if (it >= 2) {
      all.push_back(ms_all);
      kernel.push_back(ms_kernel);
    }
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaEventDestroy(e2);
  *kernel_ms = median(kernel);
  return median(all);
}

// Times one layer's attention kernel alone on the backend's KV cache:
// `batch` sequences of `q_len` new tokens after `ctx` cached ones; the time of
// `launches` launches back to back, over `launches`. Decode passes a step's
// worth (one a layer), so the figure is the kernels' cost in a stream that
// keeps the GPU fed, as a step's graph does, and not one eager launch's host
// latency: at batch 1 on an H200 one launch pair timed alone read 16.7 us.
Result<double> time_attention_ms(const ModelConfig& c, const KvMemory& kvm, int batch, int ctx, int q_len,
                                 cudaStream_t stream, int launches = 1) {
  const int len = ctx + q_len, nb = (len + kBlockSize - 1) / kBlockSize;
  if (static_cast<int64_t>(batch) * nb > kvm.layout.num_blocks) return failed_precondition("KV too small");
  const bool mla = c.is_mla();
  const int n = batch * q_len, group = mla ? c.num_heads : c.num_heads / c.num_kv_heads;
  std::vector<int32_t> qs = {0}, sl, bt, items;
  for (int s = 0; s < batch; ++s) {
    qs.push_back(qs.back() + q_len);
    sl.push_back(len);
    for (int b = 0; b < nb; ++b) bt.push_back(s * nb + b);
    const int rows = q_len * group, rpt = mla ? mla_rows_per_tile() : attention_rows_per_tile();
    for (int tile = (rows + rpt - 1) / rpt - 1; tile >= 0; --tile) {
      items.push_back(s);
      items.push_back(tile * rpt);
    }
  }
  DeviceBuffer q, out, dqs, dsl, dbt, ditems, partial;
  // Per token: the heads' queries and outputs (MLA: in latent space).
  const int64_t q_width = mla ? int64_t{c.num_heads} * c.mla.latent_dim() : c.q_size();
  const int64_t out_width = mla ? int64_t{c.num_heads} * c.mla.kv_lora_rank : c.q_size();
  BATON_RETURN_IF_ERROR(q.allocate(size_t{2} * n * q_width));
  BATON_RETURN_IF_ERROR(out.allocate(size_t{2} * n * out_width));
  launch_fill_random(q.as<bf16>(), int64_t{n} * q_width, 1.0f, 5, stream);
  auto up = [&](DeviceBuffer& d, const std::vector<int32_t>& v) -> Status {
    BATON_RETURN_IF_ERROR(d.allocate(v.size() * 4 + 16));
    return cuda_status(cudaMemcpy(d.get(), v.data(), v.size() * 4, cudaMemcpyHostToDevice), "upload");
  };
  BATON_RETURN_IF_ERROR(up(dqs, qs));
  BATON_RETURN_IF_ERROR(up(dsl, sl));
  BATON_RETURN_IF_ERROR(up(dbt, bt));
  BATON_RETURN_IF_ERROR(up(ditems, items));
  AttnArgs a;
  a.q = q.as<bf16>();
  a.out = out.as<bf16>();
  a.kv = kv_dev_of(kvm);
  a.query_start = dqs.as<int32_t>();
  a.seq_lens = dsl.as<int32_t>();
  a.block_tables = dbt.as<int32_t>();
  a.max_blocks_per_seq = nb;
  a.num_seqs = batch;
  a.num_heads = c.num_heads;
  a.num_kv_heads = c.num_kv_heads;
  a.head_dim = c.head_dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  MlaAttnArgs ma;
  static_cast<AttnArgs&>(ma) = a;
  if (mla) {
    ma.kv_lora_rank = c.mla.kv_lora_rank;
    ma.rope_dim = c.mla.qk_rope_head_dim;
    ma.scale = static_cast<float>(attention_softmax_scale(c));
  }
  const bool decode = q_len == 1;
  int split = 0, splits = 0;
  if (decode) {
    // The backend's choice (cuda_backend.cpp): enough blocks for 8 per SM (MLA:
    // 2, one per tile of heads), at most 32 splits.
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    const int per_split = mla ? batch * ((c.num_heads + mla_rows_per_tile() - 1) / mla_rows_per_tile())
                              : batch * c.num_kv_heads;
    const int cap = nb * kBlockSize, want = std::max(1, ((mla ? 2 : 8) * sms + per_split - 1) / per_split);
    auto up64 = [](int x) { return (x + 63) / 64 * 64; };
    split = std::max(up64((cap + want - 1) / want), up64((cap + 31) / 32));
    splits = (cap + split - 1) / split;
    const int width = mla ? c.mla.kv_lora_rank : c.head_dim;
    BATON_RETURN_IF_ERROR(partial.allocate(size_t{4} * batch * c.num_heads * splits * (width + 2)));
  }
  const int num_items = static_cast<int>(items.size() / 2);
  const double ms = median_call_ms(2, 6, stream, [&](int) {
    for (int i = 0; i < launches; ++i) {
      if (mla && decode) launch_mla_attention_decode(ma, split, splits, partial.as<float>(), stream);
      else if (mla) launch_mla_attention_prefill(ma, ditems.as<int32_t>(), num_items, stream);
      else if (decode) launch_attention_decode(a, split, splits, partial.as<float>(), stream);
      else launch_attention_prefill(a, ditems.as<int32_t>(), num_items, stream);
    }
  });
  BATON_CUDA_RETURN(cudaGetLastError());
  return ms / launches;
}

// A step of `batch` sequences with `ctx` cached tokens each plus `q_len` new.
StepInput make_step(int batch, int ctx, int q_len, int vocab, const SamplingParams* params, uint64_t salt) {
  return build_step(std::vector<SeqShape>(static_cast<size_t>(batch), SeqShape{ctx, q_len}), kBlockSize, vocab, params,
                    salt);
}

// Parts of a decode step of `batch` sequences at `ctx` tokens timed alone,
// on one GPU: at batch 1 the dense linears, and at every batch the attention.
void decode_breakdown(const ModelConfig& c, const KvMemory& kvm, int batch, int ctx, double copy_gbps,
                      cudaStream_t stream, Json* row) {
  if (batch == 1 && !c.is_moe() && !c.is_mla()) {
    // Each linear launched by itself, its ramp and tail included: inside the
    // step's graph programmatic launches overlap them, so the step minus
    // their sum is no measure of its fixed cost (--kernel-costs places it).
    Result<Json> lin = time_decode_linears(c, batch, copy_gbps, stream);
    if (lin.is_ok()) {
      (*row)["linears_alone"] = *lin;
    } else {
      fmt::print("        the linears alone: not timed ({})\n", lin.status().message());
    }
  }
  Result<double> att_ms = time_attention_ms(c, kvm, batch, ctx - 1, 1, stream, c.num_layers);
  if (att_ms.is_ok()) {
    const double kv_layer = kv_bytes_per_token(c) / c.num_layers * batch * ctx;
    (*row)["attention_us_per_layer"] = *att_ms * 1e3;
    (*row)["attention_launches"] = c.num_layers;
    (*row)["attention_gbps"] = kv_layer / (*att_ms * 1e-3) / 1e9;
    fmt::print("        attention alone: {:.1f} us/layer ({} layers' launches back to back), KV read at {:.0f} GB/s\n",
               *att_ms * 1e3, c.num_layers, kv_layer / (*att_ms * 1e-3) / 1e9);
  }
}

// The median wall time of b.execute() over `iters` steps after `warmup`
// untimed ones, and after at least `warmup_min_ms` of untimed steps; step i
// is make_input(i). *each_ms, when given, gets every timed step's wall time
// in order.
template <typename MakeInput>
Result<double> median_step_ms(Backend& b, int warmup, int iters, MakeInput make_input,
                              std::vector<double>* each_ms = nullptr, double warmup_min_ms = 0) {
  std::vector<double> t;
  double warm_ms = 0;
  for (int it = 0; static_cast<int>(t.size()) < iters; ++it) {
    StepInput in = make_input(it);
    auto s0 = std::chrono::steady_clock::now();
    Result<StepOutput> out = b.execute(in);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count();
    if (!out.is_ok()) return out.status();
    if (it >= warmup && warm_ms >= warmup_min_ms) t.push_back(ms);
    else warm_ms += ms;
  }
  if (each_ms != nullptr) *each_ms = t;
  return median(t);
}

// Steps of mixed shape (models[].mixed[]): a decode batch beside a prompt's
// chunk, or a later chunk of a long prompt alone; what an agg instance runs
// and a profile of pure steps does not measure.
Result<Json> time_mixed_steps(Backend& b, const ProfileOptions& o, int vocab, int have_blocks,
                              const SamplingParams* greedy) {
  Json rows = Json::array();
  for (const MixedStep& x : o.mixed_steps) {
    const std::vector<SeqShape> seqs = seqs_of(x);
    Json row{{"decode_batch", x.decodes},
             {"decode_context", x.decode_context},
             {"prefill_tokens", x.chunk_tokens},
             {"prefill_context", x.chunk_context}};
    if (blocks_of(seqs, kBlockSize) > have_blocks) {
      row["skipped"] = fmt::format("KV for the step does not fit next to the weights ({} blocks)", have_blocks);
      rows.push_back(row);
      continue;
    }
    Result<double> step_ms = median_step_ms(b, 1, o.prefill_iters,
                                            [&](int it) { return build_step(seqs, kBlockSize, vocab, greedy, it); });
    if (!step_ms.is_ok()) {
      return step_ms.status().with_context(fmt::format("mixed step {} x {} + {} after {}", x.decodes, x.decode_context,
                                                       x.chunk_tokens, x.chunk_context));
    }
    row["step_ms"] = *step_ms;
    fmt::print("mixed   {:>4} decodes at {:>5} + {:>5} tokens after {:>5}: {:9.2f} ms\n", x.decodes, x.decode_context,
               x.chunk_tokens, x.chunk_context, *step_ms);
    std::fflush(stdout);
    rows.push_back(row);
  }
  return rows;
}

Result<Json> profile_model(const std::string& name, const ModelConfig& config, const ProfileOptions& o,
                           const Ceilings& ceil) {
  Json m;
  m["model"] = name;
  CudaBackendOptions bo;
  bo.gpu_memory_utilization = o.gpu_memory_utilization;
  int max_prefill = 0;
  for (int n : o.prefill_tokens) max_prefill = std::max(max_prefill, n);
  int mixed_blocks = 0;  // the largest mixed step's KV
  for (const MixedStep& x : o.mixed_steps) {
    max_prefill = std::max(max_prefill, x.decodes + x.chunk_tokens);
    mixed_blocks = std::max(mixed_blocks, blocks_of(seqs_of(x), kBlockSize));
  }
  bo.max_num_tokens = std::max(max_prefill, 512);
  int max_batch = 0;
  for (int b : o.decode_batches) max_batch = std::max(max_batch, b);
  bo.max_num_samples = std::max(max_batch, 1);
  auto t0 = std::chrono::steady_clock::now();
  // One GPU, or N ranks over NCCL; `single` is the one GPU's backend (the
  // per-kernel breakdowns below run on it alone).
  const int cards = std::max(1, o.tensor_parallel_size);
  bo.enable_expert_parallel = o.enable_expert_parallel;
  std::unique_ptr<Backend> b;
  CudaBackend* single = nullptr;
  if (cards == 1) {
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> one, CudaBackend::create_random(config, bo, 7));
    single = one.get();
    b = std::move(one);
  } else {
    BATON_ASSIGN_OR_RETURN(b, make_random_tensor_parallel(config, bo, cards, o.gpus, 7));
  }
  m["init_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m["tensor_parallel_size"] = cards;
  m["expert_parallel"] = o.enable_expert_parallel && config.is_moe();
  double weight_bytes = 0;
  for_each_cuda_rank(*b, [&](CudaBackend& r) { weight_bytes += static_cast<double>(r.weight_bytes()); });
  m["weight_bytes"] = weight_bytes;
  m["num_layers"] = config.num_layers;
  const size_t block_bytes = b->kv_block_bytes(kBlockSize);
  const int ctx = o.decode_context;
  const int blocks_per_seq = (ctx + kBlockSize) / kBlockSize + 1;
  const int want_blocks = std::max(
      {max_batch * blocks_per_seq, (max_prefill + kBlockSize - 1) / kBlockSize + 1, mixed_blocks});
  const int have_blocks = static_cast<int>(std::min<size_t>(want_blocks, b->available_kv_bytes() / block_bytes));
  BATON_RETURN_IF_ERROR(b->init_kv_cache(have_blocks, kBlockSize));
  KvMemory kvm = b->kv_memory();
  Status filled;
  for_each_cuda_rank(*b, [&](CudaBackend& r) {
    KvMemory rk = r.kv_memory();
    cudaSetDevice(r.device_id());
    launch_fill_random(static_cast<bf16*>(rk.base), static_cast<int64_t>(rk.layout.total_bytes() / 2), 1.0f, 9,
                       r.stream());
    if (filled.is_ok()) filled = cuda_status(cudaStreamSynchronize(r.stream()), "filling the KV cache");
  });
  BATON_RETURN_IF_ERROR(filled);
  m["kv_blocks"] = have_blocks;
  const ModelConfig& c = config;
  const double kv_token_bytes = kv_bytes_per_token(c);
  m["kv_bytes_per_token"] = kv_token_bytes;
  SamplingParams greedy;
  greedy.temperature = 0.0f;

  Json decode = Json::array();
  for (int batch : o.decode_batches) {
    Json row;
    row["batch"] = batch;
    row["context"] = ctx;
    if (batch * blocks_per_seq > have_blocks) {
      row["skipped"] = fmt::format("KV for {} x {} tokens does not fit next to the weights ({} blocks)", batch, ctx,
                                   have_blocks);
      decode.push_back(row);
      fmt::print("decode  {:>14} batch {:>3}: skipped (KV does not fit)\n", name, batch);
      continue;
    }
    std::vector<double> each_ms;
    Result<double> step_ms = median_step_ms(
        *b, 3, o.decode_iters, [&](int it) { return make_step(batch, ctx - 1, 1, c.vocab_size, &greedy, it); },
        &each_ms, kDecodeWarmupMs);
    if (!step_ms.is_ok()) return step_ms.status().with_context(fmt::format("decode batch {}", batch));
    const double ms = *step_ms;
    const double wbytes = weight_bytes_read(c, batch);
    const double kvbytes = kv_token_bytes * batch * ctx;
    const double gbps = (wbytes + kvbytes) / (ms * 1e-3) / 1e9;
    const double flops = linear_flops(c, batch, batch) + attention_flops(c, double(batch) * ctx);
    row["step_ms"] = ms;
    row["step_ms_each"] = each_ms;
    row["tokens_per_s"] = batch / (ms * 1e-3);
    row["weight_bytes_read"] = wbytes;
    row["kv_bytes_read"] = kvbytes;
    row["achieved_gbps"] = gbps;
    row["bandwidth_utilization"] = gbps / (cards * ceil.copy_gbps);
    row["flop_utilization"] = flops / (ms * 1e-3) / 1e12 / (cards * ceil.gemm_tflops);
    fmt::print("decode  {:>14} batch {:>3}: {:8.3f} ms/step  {:7.0f} GB/s  {:5.1f}% of {} card(s)' bandwidth\n", name,
               batch, ms, gbps, 100 * gbps / (cards * ceil.copy_gbps), cards);
    if (!each_ms.empty()) {  // a median hides a step that drifts: its range, its first and last
      fmt::print("        {} steps from {:.3f} to {:.3f} ms; the first {:.3f}, the last {:.3f}\n", each_ms.size(),
                 *std::min_element(each_ms.begin(), each_ms.end()), *std::max_element(each_ms.begin(), each_ms.end()),
                 each_ms.front(), each_ms.back());
    }
    if (single != nullptr) {
      decode_breakdown(c, kvm, batch, ctx, ceil.copy_gbps, single->stream(), &row);
      Result<StepAnatomy> an = time_step_anatomy(
          *single, [&](int it) { return make_step(batch, ctx - 1, 1, c.vocab_size, &greedy, it); }, o.decode_iters);
      if (an.is_ok()) {
        row["gpu_ms"] = an->gpu_ms;
        row["submit_ms"] = an->submit_ms;
        fmt::print(
            "        the GPU alone {:.3f} ms ({:.1f}% of copy bandwidth), the host's submit {:.3f} ms, wall {:.3f} ms\n",
            an->gpu_ms, 100 * (wbytes + kvbytes) / (an->gpu_ms * 1e-3) / 1e9 / ceil.copy_gbps, an->submit_ms,
            an->wall_ms);
      } else {
        fmt::print("        the GPU alone: not timed ({})\n", an.status().message());
      }
      if (std::find(o.kernel_cost_batches.begin(), o.kernel_cost_batches.end(), batch) != o.kernel_cost_batches.end()) {
        Result<StepKernels> sk = time_step_kernels(*single, make_step(batch, ctx - 1, 1, c.vocab_size, &greedy, 0),
                                                   o.kernel_cost_rounds);
        if (sk.is_ok()) {
          Json kernels = Json::array();
          for (const KernelCost& k : sk->kernels)
            kernels.push_back(
                {{"name", k.name}, {"launches", k.launches}, {"without_ms", k.without_ms}, {"cost_us", k.cost_us}});
          row["graph_ms"] = sk->graph_ms;
          row["kernels"] = kernels;
          fmt::print("        in the graph ({:.3f} ms, {} kernel launches), each kernel's in-step cost:\n",
                     sk->graph_ms, sk->kernel_nodes);
          for (const KernelCost& k : sk->kernels)
            fmt::print("          {:8.1f} us  x{:<4} {}\n", k.cost_us, k.launches, k.name);
        } else {
          row["kernels_error"] = sk.status().to_string();
          fmt::print("        kernel costs: not timed ({})\n", sk.status().to_string());
        }
      }
    }
    std::fflush(stdout);
    decode.push_back(row);
  }
  m["decode"] = decode;

  Json prefill = Json::array();
  for (int n : o.prefill_tokens) {
    Json row;
    row["tokens"] = n;
    if ((n + kBlockSize - 1) / kBlockSize + 1 > have_blocks || n > bo.max_num_tokens) {
      row["skipped"] = "KV or workspace too small";
      prefill.push_back(row);
      continue;
    }
    Result<double> step_ms = median_step_ms(*b, 1, o.prefill_iters,
                                            [&](int it) { return make_step(1, 0, n, c.vocab_size, &greedy, it); });
    if (!step_ms.is_ok()) return step_ms.status().with_context(fmt::format("prefill {}", n));
    const double ms = *step_ms;
    const double lin = linear_flops(c, n, 1);
    const double att = attention_flops(c, double(n) * (n + 1) / 2.0);
    const double tflops = (lin + att) / (ms * 1e-3) / 1e12;
    row["time_ms"] = ms;
    row["tokens_per_s"] = n / (ms * 1e-3);
    row["linear_flops"] = lin;
    row["attention_flops"] = att;
    if (c.is_mla()) row["attention_flops_executed"] = attention_flops_executed(c, double(n) * (n + 1) / 2.0);
    row["achieved_tflops"] = tflops;
    // An FP8 model's linears run at the FP8 GEMM's rate: utilisation against that ceiling.
    const double gemm_ceiling = c.quantization ? ceil.fp8_gemm_tflops : ceil.gemm_tflops;
    row["flop_utilization"] = tflops / (cards * gemm_ceiling);
    // The same GEMM's rate right after the row, in the clocks and power state
    // the row ran in (profile_ceilings.h): one card only.
    std::string adjacent_note;
    if (single != nullptr) {
      Result<GemmRate> adjacent = measure_gemm_rate(c.quantization.has_value(), single->stream());
      if (adjacent.is_ok()) {
        row["gemm_tflops_adjacent"] = adjacent->tflops;
        row["flop_utilization_adjacent"] = tflops / adjacent->tflops;
        adjacent_note = fmt::format(" ({:.1f}% of the {:.0f} TFLOP/s measured right after)",
                                    100 * tflops / adjacent->tflops, adjacent->tflops);
      } else {
        adjacent_note = fmt::format(" (the rate right after: {})", adjacent.status().message());
      }
    }
    const bool expanded = mla_expands(c, n);
    double kernel_ms = 0.0;
    Result<double> att_ms = single == nullptr
                                ? Result<double>(unimplemented("the attention is timed alone on one GPU only"))
                            : expanded ? time_mla_expanded_ms(c, kvm, n, single->stream(), &kernel_ms)
                                       : time_attention_ms(c, kvm, 1, 0, n, single->stream());
    if (expanded) row["attention_flops_executed"] = att;
    if (att_ms.is_ok() && expanded) {
      row["mla_form"] = "expanded";
      row["attention_kernel_ms_per_layer"] = kernel_ms;
      fmt::print(
          "        MLA expanded: attention kernel {:.3f} ms/layer ({:.0f} TFLOP/s), the gather and expansion "
          "GEMM {:.3f} ms/layer\n",
          kernel_ms, att / c.num_layers / (kernel_ms * 1e-3) / 1e12, *att_ms - kernel_ms);
    }
    if (att_ms.is_ok()) {
      row["attention_ms_per_layer"] = *att_ms;
      row["attention_tflops"] = att / c.num_layers / (*att_ms * 1e-3) / 1e12;
      fmt::print("        attention alone: {:.3f} ms/layer ({:.0f} TFLOP/s), {:.1f} ms of {:.1f} ms in all layers\n",
                 *att_ms, att / c.num_layers / (*att_ms * 1e-3) / 1e12, *att_ms * c.num_layers, ms);
    }
    if (!c.is_moe() && !c.quantization && single != nullptr) {  // the bf16 GEMMs' breakdown
      Result<Json> gemms = time_layer_gemms(c, n, ceil.gemm_tflops, single->stream());
      if (gemms.is_ok()) row["linear_gemms"] = *gemms;
    }
    fmt::print("prefill {:>14} {:>6} tokens: {:9.2f} ms  {:6.1f} TFLOP/s  {:5.1f}% of {} card(s)' {} GEMM rate{}\n",
               name, n, ms, tflops, 100 * tflops / (cards * gemm_ceiling), cards, c.quantization ? "FP8" : "bf16",
               adjacent_note);
    std::fflush(stdout);
    prefill.push_back(row);
  }
  m["prefill"] = prefill;
  if (!o.mixed_steps.empty()) {
    BATON_ASSIGN_OR_RETURN(m["mixed"], time_mixed_steps(*b, o, c.vocab_size, have_blocks, &greedy));
  }
  return m;
}

}  // namespace

Result<Json> run_gpu_profile(const ProfileOptions& o) {
  BATON_RETURN_IF_ERROR(check_kernel_cost_batches(o.kernel_cost_batches, o.decode_batches, o.tensor_parallel_size));
  BATON_ASSIGN_OR_RETURN(Ceilings ceil, measure_ceilings());
  fmt::print(
      "device {}: copy {:.0f} GB/s, bf16 GEMM {:.0f} TFLOP/s, FP8 GEMM {:.0f} TFLOP/s ({}), pinned H2D {:.1f} GB/s\n",
      ceil.device, ceil.copy_gbps, ceil.gemm_tflops, ceil.fp8_gemm_tflops, ceil.fp8_gemm_form, ceil.h2d_pinned_gbps);
  std::fflush(stdout);
  Json r;
  r["device"] = ceil.device;
  r["measured_at"] = fmt::format("{:%Y-%m-%d %H:%M} UTC", fmt::gmtime(std::time(nullptr)));
  int driver = 0, runtime = 0;
  if (cudaDriverGetVersion(&driver) == cudaSuccess && cudaRuntimeGetVersion(&runtime) == cudaSuccess) {
    r["cuda_driver"] = fmt::format("{}.{}", driver / 1000, driver % 1000 / 10);
    r["cuda_runtime"] = fmt::format("{}.{}", runtime / 1000, runtime % 1000 / 10);
  }
  r["ceilings"] = {{"copy_gbps", ceil.copy_gbps},
                   {"gemm_tflops", ceil.gemm_tflops},
                   {"fp8_gemm_tflops", ceil.fp8_gemm_tflops},
                   {"fp8_gemm_form", ceil.fp8_gemm_form},
                   {"h2d_pinned_gbps", ceil.h2d_pinned_gbps}};
  const int cards = std::max(1, o.tensor_parallel_size);
  r["tensor_parallel_size"] = cards;
  if (NcclCommunicator::available()) {
    // From one decode row's activations (8 KiB) to a prefill's (256 MiB).
    const std::vector<size_t> sizes = {size_t{8} << 10, size_t{64} << 10, size_t{512} << 10,
                                       size_t{4} << 20, size_t{32} << 20, size_t{256} << 20};
    Result<Json> ar = measure_all_reduce(cards, o.gpus, sizes, std::max(5, o.decode_iters));
    if (!ar.is_ok()) return ar.status().with_context("measuring the NCCL all-reduce");
    r["all_reduce"] = *ar;
    for (const Json& row : *ar)
      fmt::print("all-reduce bf16 x{} {:>10.0f} bytes: {:9.1f} us  bus {:7.1f} GB/s\n", cards,
                 row["bytes"].get<double>(), row["us"].get<double>(), row["busbw_gbps"].get<double>());
    std::fflush(stdout);
  } else if (cards > 1) {
    return unimplemented("--tensor-parallel-size {}: this build has no NCCL", cards);
  }
  r["models"] = Json::array();
  for (const std::string& name : o.presets) {
    // "PRESET@fp8-block" / "PRESET@fp8-tensor": the preset with FP8 weights.
    const size_t at = name.find('@');
    BATON_ASSIGN_OR_RETURN(ModelPreset p, find_model_preset(name.substr(0, at)));
    if (at != std::string::npos) {
      const std::string form = name.substr(at + 1);
      if (form != "fp8-block" && form != "fp8-tensor")
        return invalid_argument("preset '{}': the form after @ must be fp8-block or fp8-tensor", name);
      Fp8Quantization q;
      q.scheme = form == "fp8-block" ? Fp8Scheme::kBlock : Fp8Scheme::kTensor;
      p.config.quantization = q;
    }
    Result<Json> m = profile_model(name, p.config, o, ceil);
    if (!m.is_ok()) {
      fmt::print("{}: {}\n", name, m.status().to_string());
      r["models"].push_back(Json{
          {"model", name}, {"error", m.status().to_string()}, {"decode", Json::array()}, {"prefill", Json::array()}});
      continue;
    }
    r["models"].push_back(*m);
  }
  r["targets"] = targets(r);
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    f << r.dump(2) << "\n";
    if (!f) return internal_error("cannot write {}", o.json_path);
  }
  if (!o.md_path.empty()) {
    std::ofstream f(o.md_path);
    f << markdown(r);
    if (!f) return internal_error("cannot write {}", o.md_path);
  }
  return r;
}

}  // namespace baton::cuda

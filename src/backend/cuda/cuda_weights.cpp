#include "backend/cuda/cuda_weights.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

namespace baton::cuda {
namespace {

int64_t prod(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Adds the tensor `name` (of the whole `shape`) to fill at arena offset `at`:
// rows [r0, r0 + nr) and columns [c0, c0 + nc) of it seen as [shape[0],
// the rest] (-1: all of them). Items: CudaWeights' plan.
template <class Items>
void add_slice(Items* items, size_t at, std::string name, std::vector<int64_t> shape, int64_t r0, int64_t nr,
               int64_t c0 = 0, int64_t nc = -1) {
  typename Items::value_type it{std::move(name), std::move(shape), at};
  it.row_begin = r0;
  it.rows = nr;
  it.col_begin = c0;
  it.cols = nc;
  items->push_back(std::move(it));
}

// Pinned host buffers, freed on destruction.
struct Pinned {
  void* p = nullptr;
  ~Pinned() {
    if (p) cudaFreeHost(p);
  }
};

}  // namespace

// MLA at TP > 1 shards as the CPU backend does (cpu_weights.cpp): the
// latent projections (q_a, kv_a and their norms) whole on every rank; q_b (or
// q_proj), kv_b_proj and o_proj for the rank's heads only.
void CudaWeights::plan_mla(const ModelConfig& c, const TpShard& shard, const std::string& p, CudaLayerWeights& L,
                           const std::function<size_t(bf16**, int64_t)>& region, std::vector<Item>* items) {
  const MlaConfig& m = c.mla;
  const int64_t h = c.hidden_size, nh_all = c.num_heads, qk = m.qk_head_dim(), latent = m.latent_dim();
  const int64_t rank = m.kv_lora_rank, nope = m.qk_nope_head_dim, vd = m.v_head_dim;
  const int64_t nh = shard.num_heads, head0 = shard.head_begin;
  const int64_t q_cols = m.q_lora_rank > 0 ? m.q_lora_rank : nh * qk;
  auto add = [&](size_t at, std::string name, std::vector<int64_t> shape, bool ones = false) {
    items->push_back(Item{std::move(name), std::move(shape), at, ones});
  };
  // Rows [r0, r0 + nr) of a tensor: the rank's heads of a per-head projection.
  auto add_rows = [&](size_t at, std::string name, std::vector<int64_t> shape, int64_t r0, int64_t nr) {
    add_slice(items, at, std::move(name), std::move(shape), r0, nr);
  };
  const size_t at = region(&L.qkv_a, (q_cols + latent) * h);
  if (m.q_lora_rank > 0) {
    add(at, p + "self_attn.q_a_proj.weight", {q_cols, h});
  } else {
    add_rows(at, p + "self_attn.q_proj.weight", {nh_all * qk, h}, head0 * qk, nh * qk);
  }
  add(at + q_cols * h, p + "self_attn.kv_a_proj_with_mqa.weight", {latent, h});
  if (m.q_lora_rank > 0) {
    add(region(&L.q_a_norm, q_cols), p + "self_attn.q_a_layernorm.weight", {q_cols}, true);
    add_rows(region(&L.q_b, nh * qk * q_cols), p + "self_attn.q_b_proj.weight", {nh_all * qk, q_cols}, head0 * qk,
             nh * qk);
  }
  add(region(&L.kv_a_norm, rank), p + "self_attn.kv_a_layernorm.weight", {rank}, true);
  // kv_b_proj: head j's K-nope rows then its V rows, so the rank's heads are one run of rows.
  add_rows(region(&L.kv_b, nh * (nope + vd) * rank), p + "self_attn.kv_b_proj.weight", {nh_all * (nope + vd), rank},
           head0 * (nope + vd), nh * (nope + vd));
  region(&L.uk_t, nh * rank * nope);  // derive() fills it
  // o_proj is row-parallel: the rank's heads' columns.
  add_slice(items, region(&L.o_proj, h * nh * vd), p + "self_attn.o_proj.weight", {h, nh_all * vd}, 0, -1, head0 * vd,
            nh * vd);
}

Status CudaWeights::derive(const ModelConfig& c, const TpShard& shard, cudaStream_t stream) {
  if (!c.is_mla()) return Status::ok();
  const MlaConfig& m = c.mla;
  for (const CudaLayerWeights& L : layers)  // the rank's heads of kv_b
    launch_mla_split_uk(L.kv_b, L.uk_t, shard.num_heads, m.qk_nope_head_dim, m.v_head_dim, m.kv_lora_rank, stream);
  BATON_CUDA_RETURN(cudaStreamSynchronize(stream));
  return Status::ok();
}

Status CudaWeights::plan(const ModelConfig& c, const TpShard& shard, bool has_o_bias, bool fp8,
                         std::vector<Item>* items) {
  // c: the whole model (the checkpoint's shapes); rc: this rank's slice of it.
  const ModelConfig rc = shard.rank_config(c);
  const bool split = shard.world_size > 1;
  const int64_t h = c.hidden_size, hd = c.head_dim, q = rc.q_size(), kv = rc.kv_size();
  const int64_t q_begin = shard.head_begin * hd, kv_begin = shard.kv_head_begin * hd;
  // Vocabulary rows held: a rank of several holds its slice (padded) and, in
  // the embedding, one zero row past it.
  const int64_t vocab_rows = split ? shard.vocab_per_rank : c.vocab_size, vocab_count = shard.vocab_count(c);
  size_t off = 0;
  struct Ptr {
    bf16** dst;
    size_t off;
  };
  std::vector<Ptr> ptrs;
  std::function<size_t(bf16**, int64_t)> region = [&](bf16** dst, int64_t elems) {
    off = (off + 127) & ~size_t{127};  // 256-byte alignment for every tensor
    ptrs.push_back({dst, off});
    size_t at = off;
    off += static_cast<size_t>(elems);
    return at;
  };
  auto add = [&](size_t at, std::string name, std::vector<int64_t> shape, bool ones = false) {
    items->push_back(Item{std::move(name), std::move(shape), at, ones});
  };
  // Rows [r0, r0 + nr) of a tensor, all its columns (column-parallel, or a slice of a bias).
  auto add_rows = [&](size_t at, std::string name, std::vector<int64_t> shape, int64_t r0, int64_t nr) {
    add_slice(items, at, std::move(name), std::move(shape), r0, nr);
  };
  // Columns [c0, c0 + nc) of every row (row-parallel).
  auto add_cols = [&](size_t at, std::string name, std::vector<int64_t> shape, int64_t c0, int64_t nc) {
    add_slice(items, at, std::move(name), std::move(shape), 0, -1, c0, nc);
  };
  std::vector<std::pair<float**, size_t>> f32_ptrs;
  const int64_t vocab = c.vocab_size;
  add_rows(region(&embed, (vocab_rows + (split ? 1 : 0)) * h), "model.embed_tokens.weight", {vocab, h},
           shard.vocab_begin, vocab_count);
  layers.assign(c.num_layers, {});
  for (int i = 0; i < c.num_layers; ++i) {
    CudaLayerWeights& L = layers[i];
    const std::string p = fmt::format("model.layers.{}.", i);
    add(region(&L.input_norm, h), p + "input_layernorm.weight", {h}, true);
    add(region(&L.post_norm, h), p + "post_attention_layernorm.weight", {h}, true);
    size_t at = 0;
    if (c.is_mla()) {
      plan_mla(c, shard, p, L, region, items);
    } else {
      const int64_t q_all = c.q_size(), kv_all = c.kv_size();
      if (fp8) {  // one GPU: the whole tensors
        fp8_items_.push_back({&L.qkv_f8,
                              {{p + "self_attn.q_proj.weight", q},
                               {p + "self_attn.k_proj.weight", kv},
                               {p + "self_attn.v_proj.weight", kv}},
                              h});
        fp8_items_.push_back({&L.o_proj_f8, {{p + "self_attn.o_proj.weight", h}}, q});
      } else {
        at = region(&L.qkv, (q + 2 * kv) * h);
        add_rows(at, p + "self_attn.q_proj.weight", {q_all, h}, q_begin, q);
        add_rows(at + q * h, p + "self_attn.k_proj.weight", {kv_all, h}, kv_begin, kv);
        add_rows(at + (q + kv) * h, p + "self_attn.v_proj.weight", {kv_all, h}, kv_begin, kv);
        add_cols(region(&L.o_proj, h * q), p + "self_attn.o_proj.weight", {h, q_all}, q_begin, q);
      }
      if (c.qkv_bias) {
        at = region(&L.qkv_bias, q + 2 * kv);
        add_rows(at, p + "self_attn.q_proj.bias", {q_all}, q_begin, q);
        add_rows(at + q, p + "self_attn.k_proj.bias", {kv_all}, kv_begin, kv);
        add_rows(at + q + kv, p + "self_attn.v_proj.bias", {kv_all}, kv_begin, kv);
      }
      if (c.qk_norm) {
        add(region(&L.q_norm, c.head_dim), p + "self_attn.q_norm.weight", {c.head_dim}, true);
        add(region(&L.k_norm, c.head_dim), p + "self_attn.k_norm.weight", {c.head_dim}, true);
      }
      if (has_o_bias) add(region(&L.o_bias, h), p + "self_attn.o_proj.bias", {h});
    }
    L.is_moe = c.is_moe_layer(i);
    if (L.is_moe) {
      const int64_t e = c.num_experts, mi = rc.moe_intermediate_size, mi_all = c.moe_intermediate_size;
      const int64_t m0 = shard.moe_intermediate_begin, e0 = shard.expert_begin, local = shard.num_local_experts;
      add(region(&L.router, e * h), p + "mlp.gate.weight", {e, h});
      if (c.arch == Arch::kDeepseekV3) {
        off = (off + 127) & ~size_t{127};
        f32_ptrs.push_back({&L.expert_bias, off});
        items->push_back(Item{p + "mlp.gate.e_score_correction_bias", {e}, off, false, true});
        off += 2 * static_cast<size_t>(e);
        if (c.deepseek_moe.n_shared_experts > 0) {
          const int64_t si_all = mi_all * c.deepseek_moe.n_shared_experts, si = shard.shared_intermediate_size;
          const int64_t s0 = shard.shared_intermediate_begin;
          const std::string sp = p + "mlp.shared_experts.";
          at = region(&L.shared_gate_up, 2 * si * h);
          add_rows(at, sp + "gate_proj.weight", {si_all, h}, s0, si);
          add_rows(at + si * h, sp + "up_proj.weight", {si_all, h}, s0, si);
          add_cols(region(&L.shared_down, h * si), sp + "down_proj.weight", {h, si_all}, s0, si);
        }
      }
      // The shard's experts (expert parallel: its run of them, whole): local x is expert e0 + x.
      at = region(&L.expert_gate_up, local * 2 * mi * h);
      for (int x = 0; x < local; ++x) {
        const std::string ep = fmt::format("{}mlp.experts.{}.", p, e0 + x);
        add_rows(at + x * 2 * mi * h, ep + "gate_proj.weight", {mi_all, h}, m0, mi);
        add_rows(at + x * 2 * mi * h + mi * h, ep + "up_proj.weight", {mi_all, h}, m0, mi);
      }
      at = region(&L.expert_down, local * h * mi);
      for (int x = 0; x < local; ++x)
        add_cols(at + x * h * mi, fmt::format("{}mlp.experts.{}.down_proj.weight", p, e0 + x), {h, mi_all}, m0, mi);
    } else {
      const int64_t in = rc.intermediate_size, in_all = c.intermediate_size, i0 = shard.intermediate_begin;
      if (fp8) {
        fp8_items_.push_back({&L.gate_up_f8, {{p + "mlp.gate_proj.weight", in}, {p + "mlp.up_proj.weight", in}}, h});
        fp8_items_.push_back({&L.down_f8, {{p + "mlp.down_proj.weight", h}}, in});
        continue;
      }
      at = region(&L.gate_up, 2 * in * h);
      add_rows(at, p + "mlp.gate_proj.weight", {in_all, h}, i0, in);
      add_rows(at + in * h, p + "mlp.up_proj.weight", {in_all, h}, i0, in);
      add_cols(region(&L.down, h * in), p + "mlp.down_proj.weight", {h, in_all}, i0, in);
    }
  }
  add(region(&final_norm, h), "model.norm.weight", {h}, true);
  if (!c.tie_word_embeddings)
    add_rows(region(&lm_head, vocab_rows * h), "lm_head.weight", {vocab, h}, shard.vocab_begin, vocab_count);

  size_t bytes = ((off + 127) & ~size_t{127}) * sizeof(bf16);
  Status st = arena_.allocate(bytes);
  if (!st.is_ok()) {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return resource_exhausted("the model's weights need {:.2f} GiB but the GPU has {:.2f} GiB free of {:.2f} GiB",
                              bytes / 1073741824.0, free_b / 1073741824.0, total_b / 1073741824.0);
  }
  // Zeros: the vocabulary's padding rows and the embedding's zero row stay so.
  BATON_CUDA_RETURN(cudaMemset(arena_.get(), 0, bytes));
  bf16* base = arena_.as<bf16>();
  for (const Ptr& p : ptrs) *p.dst = base + p.off;
  for (const auto& [dst, at] : f32_ptrs) *dst = reinterpret_cast<float*>(base + at);
  if (c.tie_word_embeddings) lm_head = embed;
  return fp8 ? plan_fp8(c) : Status::ok();
}

size_t CudaWeights::bytes_for(const ModelConfig& c, bool has_o_bias) {
  const size_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), vocab = c.vocab_size;
  size_t n = vocab * h * (c.tie_word_embeddings ? 1 : 2) + h;
  const MlaConfig& m = c.mla;
  const size_t nh = c.num_heads, q_cols = m.q_lora_rank > 0 ? m.q_lora_rank : nh * m.qk_head_dim();
  for (int i = 0; i < c.num_layers; ++i) {
    if (c.is_mla()) {
      n += 2 * h + (q_cols + m.latent_dim()) * h + m.kv_lora_rank + h * nh * m.v_head_dim +
           nh * (m.qk_nope_head_dim + m.v_head_dim) * m.kv_lora_rank + nh * m.kv_lora_rank * m.qk_nope_head_dim;
      if (m.q_lora_rank > 0) n += q_cols + nh * m.qk_head_dim() * q_cols;
    } else {
      n += 2 * h + (q + 2 * kv) * h + h * q + (c.qkv_bias ? q + 2 * kv : 0) + (c.qk_norm ? 2 * c.head_dim : 0) +
           (has_o_bias ? h : 0);
    }
    if (c.is_moe_layer(i)) {
      n += c.num_experts * h + 3 * static_cast<size_t>(c.num_experts) * c.moe_intermediate_size * h;
      if (c.arch == Arch::kDeepseekV3)
        n += 2 * c.num_experts + 3 * static_cast<size_t>(c.deepseek_moe.n_shared_experts) * c.moe_intermediate_size * h;
    } else {
      n += 3 * static_cast<size_t>(c.intermediate_size) * h;
    }
  }
  return n * sizeof(bf16);
}

Result<CudaWeights> CudaWeights::load(const Checkpoint& ckpt, const TpShard& shard, cudaStream_t stream,
                                      double* load_gbps) {
  CudaWeights w;
  std::vector<Item> items;
  const bool has_o_bias = ckpt.has("model.layers.0.self_attn.o_proj.bias");
  const bool fp8 = keeps_fp8(ckpt.config(), shard, &ckpt);
  BATON_RETURN_IF_ERROR(w.plan(ckpt.config(), shard, has_o_bias, fp8, &items));
  // Two pinned host buffers and two device staging buffers: the host copy of
  // chunk i+1 overlaps the upload and conversion of chunk i.
  constexpr size_t kChunk = 64u << 20;
  Pinned host[2];
  DeviceBuffer dev[2];
  cudaEvent_t done[2];
  for (int i = 0; i < 2; ++i) {
    BATON_CUDA_RETURN(cudaHostAlloc(&host[i].p, kChunk, cudaHostAllocDefault));
    BATON_RETURN_IF_ERROR(dev[i].allocate(kChunk));
    BATON_CUDA_RETURN(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming));
    BATON_CUDA_RETURN(cudaEventRecord(done[i], stream));
  }
  auto t0 = std::chrono::steady_clock::now();
  size_t total = 0;
  int slot = 0;
  Status status;
  for (const Item& it : items) {
    Result<TensorView> tv = ckpt.tensor(it.name, it.shape);
    if (!tv.is_ok()) {
      status = tv.status();
      break;
    }
    if (it.f32) {  // small (a routing bias): converted on the host, kept in fp32
      std::vector<float> f(static_cast<size_t>(tv->num_elements()));
      tv->to_float(f.data());
      BATON_CUDA_RETURN(
          cudaMemcpy(w.arena_.as<bf16>() + it.offset_elems, f.data(), f.size() * 4, cudaMemcpyHostToDevice));
      total += f.size() * dtype_size(tv->dtype);
      continue;
    }
    const size_t esize = dtype_size(tv->dtype);
    const bool f8 = tv->dtype == DType::kF8E4M3;  // dequantised on the device
    Fp8DequantArgs deq;
    if (f8) {
      BATON_CUDA_RETURN(cudaStreamSynchronize(stream));  // the scale staging is free again
      Result<Fp8DequantArgs> staged_scales = w.stage_fp8_scales(ckpt, it.name);
      if (!staged_scales.is_ok()) {
        status = staged_scales.status();
        break;
      }
      deq = *staged_scales;
    }
    const int code = tv->dtype == DType::kF32 ? 0 : (tv->dtype == DType::kF16 ? 1 : 2);
    // The slice: rows [r0, r0 + nr) of [all_rows, all_cols], columns [c0, c0 + nc).
    const int64_t all_rows = it.shape.front(), all_cols = tv->num_elements() / std::max<int64_t>(1, all_rows);
    const int64_t r0 = it.row_begin, nr = it.rows < 0 ? all_rows : it.rows;
    const int64_t c0 = it.col_begin, nc = it.cols < 0 ? all_cols : it.cols;
    const int64_t rows_per_chunk = std::max<int64_t>(1, static_cast<int64_t>(kChunk / esize) / nc);
    if (nc * static_cast<int64_t>(esize) > static_cast<int64_t>(kChunk)) {
      status = invalid_argument("{}: a row of {} elements is over the loader's {} MiB staging", it.name, nc,
                                kChunk >> 20);
      break;
    }
    const char* src = static_cast<const char*>(tv->data);
    for (int64_t b = 0; b < nr; b += rows_per_chunk) {
      const int64_t rows = std::min(rows_per_chunk, nr - b), m = rows * nc;
      BATON_CUDA_RETURN(cudaEventSynchronize(done[slot]));  // staging `slot` free again
      char* staged = static_cast<char*>(host[slot].p);
      if (nc == all_cols) {
        std::memcpy(staged, src + (r0 + b) * all_cols * esize, m * esize);
      } else {
        for (int64_t r = 0; r < rows; ++r)
          std::memcpy(staged + r * nc * esize, src + ((r0 + b + r) * all_cols + c0) * esize, nc * esize);
      }
      BATON_CUDA_RETURN(cudaMemcpyAsync(dev[slot].get(), host[slot].p, m * esize, cudaMemcpyHostToDevice, stream));
      bf16* dst = w.arena_.as<bf16>() + it.offset_elems + b * nc;
      if (f8) {
        deq.bits = static_cast<const uint8_t*>(dev[slot].get());
        deq.out = dst;
        deq.rows = rows;
        deq.cols = nc;
        deq.row0 = r0 + b;
        deq.col0 = c0;
        launch_fp8_dequantize(deq, stream);
      } else {
        launch_convert_to_bf16(dev[slot].get(), code, dst, m, stream);
      }
      BATON_CUDA_RETURN(cudaEventRecord(done[slot], stream));
      slot ^= 1;
      total += m * esize;
    }
  }
  cudaError_t sync = cudaStreamSynchronize(stream);
  for (auto& e : done) cudaEventDestroy(e);
  BATON_RETURN_IF_ERROR(status);
  BATON_CUDA_RETURN(sync);
  if (fp8) BATON_RETURN_IF_ERROR(w.load_fp8(ckpt));
  BATON_RETURN_IF_ERROR(w.derive(ckpt.config(), shard, stream));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (load_gbps) *load_gbps = s > 0 ? total / s / 1e9 : 0.0;
  return w;
}

Result<CudaWeights> CudaWeights::random(const ModelConfig& config, const TpShard& shard, uint64_t seed,
                                        cudaStream_t stream) {
  CudaWeights w;
  std::vector<Item> items;
  const bool fp8 = keeps_fp8(config, shard, nullptr);
  BATON_RETURN_IF_ERROR(w.plan(config, shard, false, fp8, &items));
  const float scale = 0.02f * 1.7320508f;  // uniform(-a, a) has std a / sqrt(3)
  uint64_t s = seed;
  for (const Item& it : items) {
    bf16* dst = w.arena_.as<bf16>() + it.offset_elems;
    const int64_t all_rows = it.shape.front(), all_cols = prod(it.shape) / std::max<int64_t>(1, all_rows);
    const int64_t n = (it.rows < 0 ? all_rows : it.rows) * (it.cols < 0 ? all_cols : it.cols);  // this slice's
    if (it.f32) BATON_CUDA_RETURN(cudaMemsetAsync(dst, 0, n * sizeof(float), stream));
    else if (it.ones) launch_fill_const(dst, n, 1.0f, stream);
    else launch_fill_random(dst, n, scale, s++ * 0x9E3779B97F4A7C15ull, stream);
  }
  if (fp8) BATON_RETURN_IF_ERROR(w.random_fp8(seed, stream));
  BATON_CUDA_RETURN(cudaStreamSynchronize(stream));
  BATON_RETURN_IF_ERROR(w.derive(config, shard, stream));
  return w;
}

}  // namespace baton::cuda

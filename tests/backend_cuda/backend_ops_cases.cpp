// The backend-ops case list: every CUDA op over its grid of shapes. Add a
// shape here and it runs against the CPU with its op's tolerances.
//
// Attention covers both prefill paths: head_dim 128 with a power-of-two block
// size runs the Hopper kernel (attention_wgmma_ws.cu), every other head_dim or
// block size the mma.sync kernel (attention.cu).
#include <tuple>

#include "backend_ops.h"

namespace baton::cuda::ops {
namespace {

// Sequence sets (new tokens, cached tokens before them) for prefill.
struct SeqSet {
  std::vector<int> q, ctx;
};
const std::vector<SeqSet> kMixed = {
    {{1, 37, 130, 5}, {0, 0, 200, 77}},  // varlen, cached prefixes, one-token rows
    {{64, 17}, {16, 3}},                 // tiles that end mid-block
};
// For head_dim 128 (the Hopper kernel): long causal prompts, chunked prefill
// after a long cached prefix, odd lengths, one-token rows beside 64-key edges.
const std::vector<SeqSet> kHd128 = {
    {{1000}, {0}},
    {{77, 1, 300, 16}, {0, 5, 1234, 64}},
    {{129, 33}, {0, 190}},
    {{300, 1, 129}, {700, 1000, 0}},
    {{1, 1, 1}, {0, 63, 64}},
    {{257, 255}, {511, 129}},  // 128-key tile edges
};

void add_attention(std::vector<OpCase>& c) {
  // (heads, kv heads): GQA groups 1, 4, 8, 16.
  const std::vector<std::pair<int, int>> gqa = {{8, 8}, {8, 2}, {16, 2}, {16, 1}};
  for (int hd : {16, 32, 64, 128})
    for (auto [nh, nkv] : gqa)
      for (int bs : {16, 12})  // 12: not a power of two
        for (const SeqSet& s : kMixed) c.push_back(attention_case({nh, nkv, hd, bs, s.q, s.ctx}));
  const std::vector<std::pair<int, int>> gqa128 = {{32, 8}, {8, 8}, {64, 8}, {16, 2}};
  for (auto [nh, nkv] : gqa128)
    for (int bs : {16, 32, 64, 24, 1})
      for (const SeqSet& s : kHd128) {
        if (s.q[0] == 1000 && nh != 32 && bs != 16) continue;  // the long prompt: at two shapes only
        c.push_back(attention_case({nh, nkv, 128, bs, s.q, s.ctx}));
      }
  // Decode: one token per sequence over contexts up to 2K, split over blocks.
  for (int hd : {16, 32, 64, 128})
    for (auto [nh, nkv] : gqa)
      for (int bs : {16, 12}) {
        AttnShape d{nh, nkv, hd, bs, {1, 1, 1, 1}, {0, 15, 300, 1023}, true, 128};
        c.push_back(attention_case(d));
        d.q_lens = {1, 1};
        d.ctx_lens = {64, 513};
        d.split_len = 64;
        c.push_back(attention_case(d));
      }
  // Splits: 32, 16 and 4 of them.
  for (int batch : {1, 40})
    for (int split : {64, 128, 512})
      c.push_back(
          attention_case({32, 8, 128, 16, std::vector<int>(batch, 1), std::vector<int>(batch, 2047), true, split}));
  // --kv-cache-dtype fp8: both kernels over an e4m3 cache (head_dim 128 prefill: the mma.sync kernel, not wgmma).
  for (int hd : {64, 128})
    for (int bs : {16, 12}) {
      c.push_back(attention_case({8, 2, hd, bs, {1, 1, 1, 1}, {0, 15, 300, 1023}, true, 128, true}));
      for (const SeqSet& s : kMixed) c.push_back(attention_case({16, 2, hd, bs, s.q, s.ctx, false, 128, true}));
    }
  c.push_back(attention_case({32, 8, 128, 16, std::vector<int>(40, 1), std::vector<int>(40, 2047), true, 512, true}));
}

void add_layer_ops(std::vector<OpCase>& c) {
  // 100: not a multiple of 8 (the scalar path).
  for (RowsShape s : {RowsShape{1, 64}, RowsShape{37, 96}, RowsShape{300, 4096}, RowsShape{5, 100}})
    c.push_back(embedding_case(s));
  // 1002 and 1001: not a multiple of the kernel's vector width (the scalar path).
  for (int hidden : {64, 1000, 1001, 1002, 4096, 5120})
    for (int rows : {1, 19}) c.push_back(add_rmsnorm_case({rows, hidden}));
  for (RowsShape s : {RowsShape{1, 8}, RowsShape{13, 700}, RowsShape{3, 701}, RowsShape{64, 14336}})
    c.push_back(silu_mul_case(s));
  for (RowsShape s : {RowsShape{1, 1}, RowsShape{3, 5}, RowsShape{257, 1000}}) c.push_back(fill_convert_case(s));
  for (bool qwen3 : {false, true})
    for (int hd : {64, 128})
      for (auto [nh, nkv] : {std::pair{8, 2}, std::pair{8, 8}, std::pair{32, 8}})
        for (int bs : {16, 12}) c.push_back(qkv_rope_cache_case({nh, nkv, hd, 21, bs, qwen3}));
  c.push_back(qkv_rope_cache_case({16, 2, 32, 1, 16, false}));
  c.push_back(qkv_rope_cache_case({16, 2, 128, 300, 32, true}));
  for (bool qwen3 : {false, true})  // --kv-cache-dtype fp8: the write quantises
    for (int bs : {16, 12}) c.push_back(qkv_rope_cache_case({8, 2, 128, 21, bs, qwen3, true}));
  c.push_back(qkv_rope_cache_case({32, 8, 64, 300, 16, true, true}));
  // The rotation computed before the programmatic wait (after the plain
  // skinny GEMV): Qwen3-30B-A3B's heads at one token and a prefill's worth,
  // bf16 and e4m3 caches, and Llama's bias and scaling.
  for (bool fp8 : {false, true}) {
    c.push_back(qkv_rope_cache_case({32, 4, 128, 1, 16, true, fp8, true}));
    c.push_back(qkv_rope_cache_case({32, 4, 128, 300, 16, true, fp8, true}));
  }
  c.push_back(qkv_rope_cache_case({8, 2, 64, 21, 12, false, false, true}));
}

void add_matmul_ops(std::vector<OpCase>& c) {
  for (GemmShape s : {GemmShape{1, 512, 256}, GemmShape{77, 1000, 320}, GemmShape{300, 64, 4096},
                      GemmShape{513, 1024, 1024}, GemmShape{9, 4096, 512}})
    c.push_back(gemm_case(s));
  // k 1160: full passes and a last, partial one (at one row the unchecked
  // passes, kFullPasses); 4096 and 14336: full passes only; 40: one partial.
  for (int m : {1, 2, 3, 5, 8})
    for (auto [n, k] : {std::pair{1001, 4096}, std::pair{64, 14336}, std::pair{3, 40}, std::pair{257, 1160}})
      c.push_back(gemv_case({m, n, k}));
  for (GemmShape s : {GemmShape{1, 14336, 4096}, GemmShape{3, 1000, 520}, GemmShape{8, 768, 2048}})
    c.push_back(gemv_silu_mul_case(s));
  for (GemmShape s : {GemmShape{300, 1000, 520}, GemmShape{1, 256, 64}, GemmShape{33, 127, 1000}})
    c.push_back(gemm_row_invariant_case(s));
  c.push_back(gemm_buckets_case({1100, 1025, 1152, 1101, 3, 7}, 576, 1024));
  c.push_back(gemm_buckets_case({65, 71, 72, 64}, 256, 512));
  // The GEMV's fused forms at decode's 1 and 2 rows, bf16 and e4m3 weights:
  // Llama-3.1-8B's qkv (norm-in), gate/up (gated norm-in), o_proj and down
  // (residual-add); an o_proj bias; odd widths (a partial warp of rows, k
  // not a multiple of a lane pass).
  for (bool fp8 : {false, true})
    for (int m : {1, 2}) {
      c.push_back(gemv_norm_in_case({m, 6144, 4096}, false, fp8));
      c.push_back(gemv_norm_in_case({m, 14336, 4096}, true, fp8));
      c.push_back(gemv_residual_add_case({m, 4096, 4096}, false, fp8));
      c.push_back(gemv_residual_add_case({m, 4096, 14336}, false, fp8));
    }
  c.push_back(gemv_norm_in_case({1, 1001, 520}, false, false));
  c.push_back(gemv_norm_in_case({2, 96, 208}, true, true));
  c.push_back(gemv_residual_add_case({1, 1001, 512}, true, false));
  c.push_back(gemv_residual_add_case({2, 97, 208}, true, true));
  c.push_back(gemv_residual_add_case({1, 1001, 528}, true, true));  // e4m3 at one row: 2 chunks a lane, 33 a row
  c.push_back(
      gemv_residual_add_case({1, 2048, 4096}, false, false));  // Qwen3-30B-A3B's o_proj: one wave, launched early
  c.push_back(gemv_norm_in_case({1, 97, 208}, true, false));   // bf16 at one row, launched late: a last, partial block
}

void add_fp8_ops(std::vector<OpCase>& c) {
  for (RowsShape s : {RowsShape{1, 128}, RowsShape{37, 4096}, RowsShape{300, 1000}, RowsShape{5, 64}})
    c.push_back(fp8_quantize_case(s));
  // The quantising norm and SwiGLU: Llama-3.1-8B's widths; widths past one
  // pass of 1024 threads (5120, 7168); one warp (128); a SwiGLU row of 3 half-
  // warp groups in a partial block (384); DeepSeek-V3's intermediate (18432).
  for (RowsShape s :
       {RowsShape{4, 4096}, RowsShape{37, 4096}, RowsShape{19, 5120}, RowsShape{3, 7168}, RowsShape{8, 128}})
    c.push_back(fp8_quantizing_norm_case(s));
  for (RowsShape s :
       {RowsShape{4, 14336}, RowsShape{37, 1024}, RowsShape{300, 128}, RowsShape{1, 384}, RowsShape{5, 18432}})
    c.push_back(fp8_quantizing_silu_mul_case(s));
  // GEMV (m <= 8), W8A8 (m % 4 == 0 and remainders), Llama-3.1-8B's shapes among them.
  for (GemmShape s :
       {GemmShape{1, 4096, 4096}, GemmShape{3, 1000, 640}, GemmShape{8, 6144, 4096}, GemmShape{16, 4096, 4096},
        GemmShape{37, 1024, 1024}, GemmShape{300, 6144, 4096}, GemmShape{130, 4096, 14336}, GemmShape{1030, 512, 2048}})
    c.push_back(fp8_linear_case(s, 128));
  // Per-row scales and unaligned k: the dequantising fallback (and the GEMV at m <= 8).
  for (GemmShape s : {GemmShape{40, 160, 64}, GemmShape{20, 384, 256}, GemmShape{5, 176, 64}, GemmShape{77, 96, 640}})
    c.push_back(fp8_linear_case(s, 1));
  // The GEMV's edges: rows not a multiple of its 16-row tile, k ending inside a
  // 64-column tile and inside a scale group, every batch from 1 to 8, a long k.
  for (GemmShape s :
       {GemmShape{2, 100, 208}, GemmShape{4, 33, 1040}, GemmShape{6, 250, 144}, GemmShape{7, 1024, 14336}})
    c.push_back(fp8_linear_case(s, 1));
  for (GemmShape s : {GemmShape{2, 4096, 4096}, GemmShape{4, 1040, 1152}, GemmShape{5, 144, 2048}})
    c.push_back(fp8_linear_case(s, 128));
  // The gated GEMV (gate/up with SwiGLU fused; s.n outputs from 2 s.n rows).
  for (GemmShape s : {GemmShape{1, 14336, 4096}, GemmShape{4, 1000, 640}}) c.push_back(fp8_gemv_silu_mul_case(s, 128));
  c.push_back(fp8_gemv_silu_mul_case({7, 96, 208}, 1));
}

void add_moe_ops(std::vector<OpCase>& c) {
  // (tokens, experts, top_k, hidden, expert inter)
  const std::vector<MoeShape> shapes = {
      {1, 8, 2, 64, 32},   {70, 16, 4, 256, 96}, {300, 128, 8, 512, 64}, {2000, 8, 2, 256, 96},  // 128x128 tiles
      {5, 60, 4, 128, 32}, {33, 128, 1, 64, 64},
  };
  for (const MoeShape& s : shapes) {
    for (bool renorm : {false, true}) {
      MoeShape r = s;
      r.renorm = renorm;
      c.push_back(moe_topk_case(r));
    }
    c.push_back(moe_align_case(s));
    c.push_back(grouped_gemm_case(s));
    c.push_back(moe_experts_case(s));
  }
  // The expert sort at prefill slot counts (8,192 in one block; 16,384 over
  // several), and an expert-parallel rank's share (experts 32-95; the other
  // experts' slots get no row), in one block and over several.
  c.push_back(moe_align_case({1024, 128, 8, 64, 32}));
  c.push_back(moe_align_case({2048, 128, 8, 64, 32}));
  c.push_back(moe_align_case({2048, 128, 8, 64, 32}, 32, 64));
  c.push_back(moe_align_case({100, 128, 8, 64, 32}, 32, 64));
  // Routing and sort in one launch (decode's 1-8 tokens; 9 and 40 take the
  // two kernels), plain and renormalised, all experts and an expert-parallel
  // rank's share.
  for (const MoeShape& s : std::vector<MoeShape>{
           {1, 128, 8, 64, 32}, {3, 60, 4, 64, 32}, {8, 128, 8, 64, 32}, {9, 128, 8, 64, 32}, {40, 256, 8, 64, 32}})
    for (bool renorm : {false, true}) {
      MoeShape r = s;
      r.renorm = renorm;
      c.push_back(moe_route_case(r));
      c.push_back(moe_route_case(r, s.experts / 4, s.experts / 2));
    }
  // Router, routing and sort in one launch: 1, 3 and 8 tokens, Qwen3-30B-A3B's
  // 128 experts over hidden 2048, 60 experts (a partial warp of rows), a
  // hidden width past one lane pass (1,000 is not a multiple of 256 columns).
  // One token's top-k is the block's ranking (block_topk_one): also 60 experts
  // (a row not a multiple of 4) and 512 (two experts a thread).
  for (const MoeShape& s : std::vector<MoeShape>{{1, 128, 8, 2048, 32},
                                                 {1, 60, 4, 1000, 32},
                                                 {1, 512, 8, 256, 32},
                                                 {3, 60, 4, 1000, 32},
                                                 {8, 128, 8, 256, 32},
                                                 {8, 16, 2, 64, 32}})
    for (bool renorm : {false, true}) {
      MoeShape r = s;
      r.renorm = renorm;
      c.push_back(moe_router_route_case(r));
      c.push_back(moe_router_route_case(r, s.experts / 4, s.experts / 2));
    }
  // The same with the post-attention norm in it (decode's 1 and 2 tokens on
  // one rank; up to 8 run), Qwen3-30B-A3B's widths, a hidden width past one
  // lane pass, an expert-parallel share. One token runs in a cluster of
  // blocks (moe_router.cu): also 60 experts and 1,000 columns (blocks with
  // idle warps, a normed row not split evenly) and 512 experts (4 a warp).
  for (const MoeShape& s : std::vector<MoeShape>{{1, 128, 8, 2048, 32},
                                                 {1, 60, 4, 1000, 32},
                                                 {1, 512, 8, 256, 32},
                                                 {2, 128, 8, 2048, 32},
                                                 {5, 60, 4, 1000, 32}})
    for (bool renorm : {false, true}) {
      MoeShape r = s;
      r.renorm = renorm;
      c.push_back(moe_router_route_case(r, 0, 0, true));
    }
  c.push_back(moe_router_route_case({1, 128, 8, 2048, 32}, 32, 64, true));
  c.push_back(moe_router_route_case({2, 128, 8, 2048, 32}, 32, 64, true));
  // One token where its cluster cannot run: the block-per-expert kernel.
  c.push_back(moe_router_route_case({1, 128, 8, 2048, 32}, 0, 0, true, false));
  c.push_back(moe_router_route_case({1, 60, 4, 1000, 32}, 15, 30, false, false));
  // The combine with the next layer's add_rmsnorm: decode and prefill token
  // counts, hidden widths 64 to 2048 (Qwen3-30B-A3B's), with DeepSeekMoE's
  // shared-expert row, and an expert-parallel rank's share.
  for (const MoeShape& s : std::vector<MoeShape>{{1, 128, 8, 2048, 32}, {7, 60, 4, 256, 32}, {300, 16, 2, 64, 32}}) {
    c.push_back(moe_combine_norm_case(s));
    c.push_back(moe_combine_norm_case(s, 0, 0, true));
    c.push_back(moe_combine_norm_case(s, s.experts / 4, s.experts / 2));
  }
  // The wgmma kernel (steps past the skinny kernels' 8 tokens), both tile
  // widths, A gathered and in sorted order, plain and gated: partial n tiles
  // (n 192, 272, 320; gated 96, 136, 160 outputs), a k tail (200), uneven
  // experts, a decode-sized step (a few rows an expert).
  for (const MoeShape& s : std::vector<MoeShape>{
           {2000, 8, 2, 256, 96}, {600, 8, 2, 200, 136}, {1024, 16, 4, 512, 160}, {24, 64, 4, 128, 64}})
    for (int tile_n : {128, 256})
      for (bool gather : {true, false})
        for (bool gated : {false, true}) c.push_back(grouped_gemm_wgmma_case(s, tile_n, gather, gated));
  c.push_back(grouped_gemm_wgmma_case({1024, 64, 8, 1024, 384}, 256, true, true));
  // Decode's small batches through the skinny expert kernels: one token, up to
  // 8 rows of one expert, Qwen3-30B-A3B's widths; every kernel form (up to 1,
  // 2, 4 and 8 rows an expert: 1, 2, 3-4 and 5-8 tokens).
  for (const MoeShape& s : std::vector<MoeShape>{{1, 8, 2, 64, 32},
                                                 {5, 60, 4, 128, 32},
                                                 {8, 8, 2, 256, 96},
                                                 {3, 16, 4, 72, 40},
                                                 {1, 128, 8, 2048, 768},
                                                 {2, 128, 8, 2048, 768},
                                                 {2, 4, 4, 64, 32},
                                                 {4, 8, 4, 128, 64},
                                                 {1, 16, 4, 1160, 1160}})  // full passes and a partial one
    c.push_back(moe_skinny_case(s));
}

// DeepSeek-V3: attention on the latent (its real widths, 512 + 64, and the
// tiny fixture's, 32 + 8), heads in tiles of 64 rows (4, 16, 128 heads),
// block sizes 16 / 12 / 64, cached prefixes, chunks, one-token rows; decode
// over one split or many; the projections around it; the grouped routing.
void add_mla_ops(std::vector<OpCase>& c) {
  const std::vector<std::pair<int, int>> dims = {{32, 8}, {512, 64}};
  const std::vector<SeqSet> prefill = {
      {{1, 37, 130, 5}, {0, 0, 200, 77}},
      {{64, 17}, {16, 3}},
      {{300}, {0}},
  };
  for (auto [rank, rope] : dims)
    for (int nh : {4, 16, 128})
      for (int bs : {16, 12}) {
        for (const SeqSet& s : prefill) {
          if (nh == 128 && s.q[0] == 300) continue;  // 38K rows: the long prompt at fewer heads
          c.push_back(mla_attention_case({nh, rank, rope, bs, s.q, s.ctx, false, 0}));
        }
        c.push_back(mla_attention_case({nh, rank, rope, bs, {1, 1, 1, 1}, {0, 15, 300, 1023}, true, 0}));
        c.push_back(mla_attention_case({nh, rank, rope, bs, {1, 1, 1, 1}, {0, 15, 300, 1023}, true, 128}));
        c.push_back(mla_attention_case({nh, rank, rope, bs, {1, 1}, {64, 513}, true, 64}));
      }
  c.push_back(mla_attention_case({128, 512, 64, 64, std::vector<int>(40, 1), std::vector<int>(40, 4095), true, 512}));
  c.push_back(mla_attention_case({128, 512, 64, 16, {1}, {4095}, true, 128}));
  // The expanded prefill (192 / 128 heads): odd lengths, one-token rows,
  // cached prefixes, several sequences, tiles of 128 keys and queries crossed
  // unevenly, odd head counts, DeepSeek-V3's latent rank and a small one.
  const std::vector<SeqSet> expanded = {
      {{1}, {0}}, {{130}, {0}}, {{77, 300}, {0, 0}}, {{129, 5, 1}, {200, 37, 64}}, {{257}, {1000}},
  };
  for (int rank : {64, 512})
    for (int bs : {16, 12})
      for (const SeqSet& s : expanded) c.push_back(mla_expanded_prefill_case({2, rank, bs, s.q, s.ctx}));
  c.push_back(mla_expanded_prefill_case({3, 512, 64, {384, 100}, {128, 600}}));
  // (tokens, heads, q_lora_rank, kv_lora_rank, nope, rope, v, block size, interleaved)
  const std::vector<MlaProjShape> proj = {
      {5, 4, 0, 32, 16, 8, 16, 16, true},          {5, 4, 48, 32, 16, 8, 16, 12, false},
      {33, 16, 1536, 512, 128, 64, 128, 16, true}, {1, 128, 1536, 512, 128, 64, 128, 64, true},
      {70, 128, 0, 512, 128, 64, 128, 16, false},
  };
  for (const MlaProjShape& s : proj) {
    c.push_back(mla_prepare_case(s));
    c.push_back(mla_q_latent_case(s));
    c.push_back(mla_unabsorb_case(s));
    c.push_back(mla_split_uk_case(s));
  }
  // (tokens, experts, top_k, n_group, topk_group): the fixture's, DeepSeek-V3's, odd groupings.
  const std::vector<GroupedRouteShape> routes = {
      {1, 8, 2, 2, 1}, {37, 8, 2, 2, 1}, {64, 256, 8, 8, 4}, {300, 256, 8, 8, 4}, {9, 64, 6, 4, 2}, {5, 60, 4, 3, 3},
  };
  for (GroupedRouteShape s : routes)
    for (bool renorm : {true, false}) {
      s.renorm = renorm;
      c.push_back(moe_grouped_topk_case(s));
    }
}

void add_sampling(std::vector<OpCase>& c) {
  auto mk = [](const char* name, float t, int k, float tp, float mp, float rep, float pres, float freq, int nlp) {
    SampleShape s;
    s.name = name;
    SamplingParams& p = s.params;
    p.temperature = t;
    p.top_k = k;
    p.top_p = tp;
    p.min_p = mp;
    p.repetition_penalty = rep;
    p.presence_penalty = pres;
    p.frequency_penalty = freq;
    p.num_logprobs = nlp;
    return s;
  };
  const std::vector<SampleShape> kinds = {
      mk("greedy", 0.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 5),
      mk("temperature", 1.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, -1),
      mk("top_k", 0.7f, 50, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0),
      mk("top_p", 1.3f, 0, 0.8f, 0.0f, 1.0f, 0.0f, 0.0f, 3),
      mk("min_p", 1.0f, 0, 1.0f, 0.05f, 1.0f, 0.0f, 0.0f, -1),
      mk("all_filters", 0.9f, 100, 0.9f, 0.01f, 1.0f, 0.0f, 0.0f, -1),
      mk("penalties", 0.8f, 0, 1.0f, 0.0f, 1.3f, 0.5f, 0.2f, 2),
      mk("greedy_penalties", 0.0f, 0, 1.0f, 0.0f, 1.5f, 0.0f, 1.0f, -1),
      mk("top_logprobs_20", 1.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 20),
      mk("logit_bias", 0.9f, 0, 0.95f, 0.0f, 1.0f, 0.0f, 0.0f, 3),
      mk("greedy_logit_bias_penalties", 0.0f, 0, 1.0f, 0.0f, 1.3f, 0.2f, 0.1f, -1),
  };
  for (SampleShape s : kinds) {
    // Ids below every vocabulary here; +8 lifts a token near the top, -100 takes one out.
    if (s.name.find("logit_bias") != std::string::npos)
      s.params.logit_bias = {{3, -100.0f}, {17, 8.0f}, {256, 2.5f}, {999, -1.5f}};
    for (auto [rows, vocab] : {std::pair{64, 5000}, std::pair{1, 151936}}) {
      s.rows = rows;
      s.vocab = vocab;
      c.push_back(sampling_case(s));
    }
  }
  // Plain rows (no history, no top logprobs) take the split-vocabulary path:
  // one chunk (1000), a partial last chunk (5000, 151936); alone and mixed
  // with rows of the one-block path (every other row with a history).
  for (SampleShape s : {mk("greedy", 0.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, -1),
                        mk("temperature", 0.8f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0),
                        mk("temperature_top_k_vocab", 1.2f, 151936, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, -1)})
    for (auto [rows, vocab, every] :
         {std::tuple{64, 5000, 0}, std::tuple{3, 1000, 0}, std::tuple{2, 151936, 0}, std::tuple{64, 5000, 2}}) {
      s.rows = rows;
      s.vocab = vocab;
      s.history_every = every;
      c.push_back(sampling_case(s));
    }
}

}  // namespace

std::vector<OpCase> all_cases() {
  std::vector<OpCase> c;
  add_attention(c);
  add_layer_ops(c);
  add_matmul_ops(c);
  add_fp8_ops(c);
  add_moe_ops(c);
  add_mla_ops(c);
  add_sampling(c);
  return c;
}

}  // namespace baton::cuda::ops

// backend-ops runners: the dense GEMMs (cuBLASLt through Gemm, the skinny
// GEMV kernel, the batch-invariant GEMM) and the MoE ops (top-k routing, the
// expert sort, the grouped GEMM, the whole expert block), against the CPU's
// matmul, silu_mul and moe_route.
#include <algorithm>
#include <numeric>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_local_experts.h"
#include "backend_ops.h"

namespace baton::cuda::ops {
namespace {

using testing::download;
using testing::download_bf16;
using testing::poisoned_bf16;
using testing::poisoned_f32;
using testing::random_bf16_values;
using testing::upload;
using testing::upload_bf16;

std::string mnk(GemmShape s) { return std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k); }

struct GemmInputs {
  std::vector<float> x, w, ref;
  DeviceBuffer dx, dw;
};
GemmInputs gemm_inputs(GemmShape s, std::mt19937& rng) {
  GemmInputs g;
  g.x = random_bf16_values(static_cast<size_t>(s.m) * s.k, 1.0f, rng);
  g.w = random_bf16_values(static_cast<size_t>(s.n) * s.k, 0.1f, rng);
  g.dx = upload_bf16(g.x);
  g.dw = upload_bf16(g.w);
  g.ref.resize(static_cast<size_t>(s.m) * s.n);
  matmul(g.x.data(), s.m, s.k, g.w.data(), s.n, nullptr, g.ref.data(), nullptr);
  return g;
}

// Both output dtypes of one y = x . w^T launcher.
template <typename Launch>
std::vector<Check> both_dtypes(GemmShape s, const GemmInputs& g, Launch launch) {
  const size_t elems = static_cast<size_t>(s.m) * s.n;
  auto dy = poisoned_bf16(elems);
  auto dyf = poisoned_f32(elems);
  launch(dy.get(), false);
  launch(dyf.get(), true);
  return {compare("bf16_out", download_bf16(dy, elems), g.ref, kTolBf16),
          compare("f32_out", download<float>(dyf, elems), g.ref, kTolF32)};
}

std::vector<Check> run_gemm(GemmShape s, std::mt19937& rng) {
  const GemmInputs g = gemm_inputs(s, rng);
  Gemm gemm;
  BATON_CHECK_OK(gemm.init());
  return both_dtypes(
      s, g, [&](void* y, bool f32) { gemm.run(g.dx.as<bf16>(), g.dw.as<bf16>(), y, s.m, s.n, s.k, f32, nullptr); });
}

std::vector<Check> run_gemv(GemmShape s, std::mt19937& rng) {
  BATON_CHECK(gemv_supports(s.m, s.k), "gemv case {} outside the kernel's shapes", mnk(s));
  const GemmInputs g = gemm_inputs(s, rng);
  return both_dtypes(
      s, g, [&](void* y, bool f32) { launch_gemv(g.dx.as<bf16>(), g.dw.as<bf16>(), y, s.m, s.n, s.k, f32, nullptr); });
}

// The gated form (decode's gate/up with SwiGLU fused): s.n outputs from 2 s.n
// rows, against the CPU's matmul, the products rounded to bf16 as the unfused
// GEMV writes them, then its silu_mul.
std::vector<Check> run_gemv_silu_mul(GemmShape s, std::mt19937& rng) {
  BATON_CHECK(gemv_supports(s.m, s.k), "gemv case {} outside the kernel's shapes", mnk(s));
  const GemmInputs g = gemm_inputs({s.m, 2 * s.n, s.k}, rng);
  std::vector<float> gu(g.ref);
  for (float& v : gu) v = testing::round_bf16(v);
  std::vector<float> ref(static_cast<size_t>(s.m) * s.n);
  silu_mul(gu.data(), s.m, s.n, ref.data());
  auto dact = poisoned_bf16(ref.size());
  launch_gemv_silu_mul(g.dx.as<bf16>(), g.dw.as<bf16>(), dact.as<bf16>(), s.m, s.n, s.k, nullptr);
  return {compare("act", download_bf16(dact, ref.size()), ref, kTolBf16)};
}

// Both dtypes, and the middle row alone gives bit-identical fp32 results.
std::vector<Check> run_gemm_row_invariant(GemmShape s, std::mt19937& rng) {
  const GemmInputs g = gemm_inputs(s, rng);
  std::vector<Check> checks = both_dtypes(s, g, [&](void* y, bool f32) {
    launch_gemm_row_invariant(g.dx.as<bf16>(), g.dw.as<bf16>(), y, s.m, s.n, s.k, f32, nullptr);
  });
  const size_t elems = static_cast<size_t>(s.m) * s.n;
  auto dall = poisoned_f32(elems);
  launch_gemm_row_invariant(g.dx.as<bf16>(), g.dw.as<bf16>(), dall.get(), s.m, s.n, s.k, true, nullptr);
  const auto all = download<float>(dall, elems);
  const int r = s.m / 2;
  std::vector<float> row(g.x.begin() + static_cast<size_t>(r) * s.k, g.x.begin() + static_cast<size_t>(r + 1) * s.k);
  auto drow = upload_bf16(row);
  auto done = poisoned_f32(s.n);
  launch_gemm_row_invariant(drow.as<bf16>(), g.dw.as<bf16>(), done.get(), 1, s.n, s.k, true, nullptr);
  const std::vector<float> batch_row(all.begin() + static_cast<size_t>(r) * s.n,
                                     all.begin() + static_cast<size_t>(r + 1) * s.n);
  checks.push_back(compare_exact("row_alone", download<float>(done, s.n), batch_row));
  return checks;
}

// One Gemm over the sizes in turn: whichever size of a bucket comes first
// chooses the algorithm, and every size must still match the CPU.
std::vector<Check> run_gemm_buckets(const std::vector<int>& ms, int n, int k, std::mt19937& rng) {
  Gemm gemm;
  BATON_CHECK_OK(gemm.init());
  const auto w = random_bf16_values(static_cast<size_t>(n) * k, 0.1f, rng);
  auto dw = upload_bf16(w);
  std::vector<Check> checks;
  for (int m : ms) {
    const auto x = random_bf16_values(static_cast<size_t>(m) * k, 1.0f, rng);
    auto dx = upload_bf16(x);
    auto dy = poisoned_bf16(static_cast<size_t>(m) * n);
    gemm.run(dx.as<bf16>(), dw.as<bf16>(), dy.get(), m, n, k, false, nullptr);
    std::vector<float> ref(static_cast<size_t>(m) * n);
    matmul(x.data(), m, k, w.data(), n, nullptr, ref.data(), nullptr);
    checks.push_back(compare("m" + std::to_string(m), download_bf16(dy, ref.size()), ref, kTolBf16));
  }
  return checks;
}

// ---- MoE

std::string moe_name(const MoeShape& s) {
  return "t" + std::to_string(s.tokens) + " e" + std::to_string(s.experts) + " k" + std::to_string(s.top_k) + " h" +
         std::to_string(s.hidden) + " i" + std::to_string(s.inter) + (s.renorm ? " renorm" : "");
}

// Distinct random experts per token and random weights.
void random_routes(const MoeShape& s, std::mt19937& rng, std::vector<int32_t>& ids, std::vector<float>& w) {
  ids.resize(static_cast<size_t>(s.tokens) * s.top_k);
  w.resize(ids.size());
  std::vector<int> all(s.experts);
  for (int t = 0; t < s.tokens; ++t) {
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    for (int j = 0; j < s.top_k; ++j) {
      ids[t * s.top_k + j] = all[j];
      w[t * s.top_k + j] = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
    }
  }
}

std::vector<Check> run_moe_topk(const MoeShape& s, std::mt19937& rng) {
  const int n = s.tokens, e = s.experts, k = s.top_k;
  std::uniform_real_distribution<float> d(-3.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(n) * e);
  for (auto& x : logits) x = d(rng);
  auto dl = upload(logits);
  auto dids = upload(std::vector<int32_t>(static_cast<size_t>(n) * k, -1));
  auto dw = poisoned_f32(static_cast<size_t>(n) * k);
  launch_moe_topk(dl.as<float>(), n, e, k, s.renorm, dids.as<int32_t>(), dw.as<float>(), nullptr);
  std::vector<int32_t> ids(static_cast<size_t>(n) * k);
  std::vector<float> w(ids.size());
  moe_route(logits.data(), n, e, k, s.renorm, ids.data(), w.data());
  return {compare_exact("ids", download<int32_t>(dids, ids.size()), ids),
          compare("weights", download<float>(dw, w.size()), w, kTolRouteW)};
}

// The expert sort's result against ids: offsets are the per-expert counts'
// prefix sums; the sorted slots of expert e are exactly its (token, choice)
// slots; slot_pos inverts it. Experts [begin, begin + e) are sorted; other
// experts' slots get slot_pos -1.
std::vector<Check> check_sort(const std::vector<int32_t>& ids, int begin, int e, const DeviceBuffer& doff,
                              const DeviceBuffer& dsorted, const DeviceBuffer& dpos) {
  const int slots = static_cast<int>(ids.size());
  const auto off = download<int32_t>(doff, e + 1);
  std::vector<int32_t> ref_off(e + 1, 0);
  for (int32_t id : ids)
    if (id >= begin && id < begin + e) ++ref_off[id - begin + 1];
  std::partial_sum(ref_off.begin(), ref_off.end(), ref_off.begin());
  const int rows = ref_off[e];
  const auto sorted = download<int32_t>(dsorted, rows);
  const auto pos = download<int32_t>(dpos, slots);
  // The GPU's order within an expert is free: compare each expert's slot set.
  std::vector<int32_t> got_sets = sorted, ref_sets;
  for (int ex = 0; ex < e; ++ex) {
    for (int i = 0; i < slots; ++i)
      if (ids[i] == begin + ex) ref_sets.push_back(i);
    if (off == ref_off) std::sort(got_sets.begin() + off[ex], got_sets.begin() + off[ex + 1]);
  }
  std::vector<int32_t> inverse(slots, -1);
  for (int i = 0; i < rows; ++i)
    if (sorted[i] >= 0 && sorted[i] < slots) inverse[sorted[i]] = i;
  return {compare_exact("offsets", off, ref_off), compare_exact("sorted_slots", got_sets, ref_sets),
          compare_exact("slot_pos", pos, inverse)};
}

// The runs of a one-launch routing (MoeRouting::runs) from the CPU's ids: at
// each sorted position, e | rows << 16 where local expert e's rows start,
// else -1.
std::vector<int32_t> expected_runs(const std::vector<int32_t>& ids, int begin, int e) {
  std::vector<int32_t> count(e, 0), runs(ids.size(), -1);
  for (int32_t id : ids)
    if (id >= begin && id < begin + e) ++count[id - begin];
  for (int ex = 0, p = 0; ex < e; p += count[ex], ++ex)
    if (count[ex] > 0) runs[p] = ex | count[ex] << kMoeRunRowsShift;
  return runs;
}

Check check_runs(const std::vector<int32_t>& ids, int begin, int e, const DeviceBuffer& druns) {
  return compare_exact("runs", download<int32_t>(druns, ids.size()), expected_runs(ids, begin, e));
}

// The expert sort alone; with local > 0, an expert-parallel rank's sort over
// experts [begin, begin + local).
std::vector<Check> run_moe_align(const MoeShape& s, int begin, int local, std::mt19937& rng) {
  std::vector<int32_t> ids;
  std::vector<float> w;
  random_routes(s, rng, ids, w);
  const int slots = static_cast<int>(ids.size()), e = local > 0 ? local : s.experts;
  auto dids = upload(ids);
  auto doff = upload(std::vector<int32_t>(e + 1, -1));
  auto dsorted = upload(std::vector<int32_t>(slots, -1)), dpos = upload(std::vector<int32_t>(slots, -1));
  if (local > 0)
    launch_moe_align_local(dids.as<int32_t>(), slots, begin, e, doff.as<int32_t>(), dsorted.as<int32_t>(),
                           dpos.as<int32_t>(), nullptr);
  else
    launch_moe_align(dids.as<int32_t>(), slots, e, doff.as<int32_t>(), dsorted.as<int32_t>(), dpos.as<int32_t>(),
                     nullptr);
  return check_sort(ids, begin, e, doff, dsorted, dpos);
}

// Routing and sort in one call (one kernel up to 8 tokens, topk then align
// above): the ids and weights as the CPU routes them, the sort as above.
std::vector<Check> run_moe_route(const MoeShape& s, int begin, int local, std::mt19937& rng) {
  const int n = s.tokens, k = s.top_k, slots = n * k, e = local > 0 ? local : s.experts;
  std::uniform_real_distribution<float> d(-3.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(n) * s.experts);
  for (auto& x : logits) x = d(rng);
  auto dl = upload(logits);
  auto dids = upload(std::vector<int32_t>(slots, -1));
  auto dw = poisoned_f32(slots);
  auto doff = upload(std::vector<int32_t>(e + 1, -1));
  auto dsorted = upload(std::vector<int32_t>(slots, -1)), dpos = upload(std::vector<int32_t>(slots, -1));
  const bool one_block = n <= kMoeRouteOneBlockTokens;  // the form that writes runs
  auto druns = upload(std::vector<int32_t>(slots, 0x7fff7fff));
  launch_moe_route(dl.as<float>(), n, s.experts, k, s.renorm, begin, e, dids.as<int32_t>(), dw.as<float>(),
                   doff.as<int32_t>(), dsorted.as<int32_t>(), dpos.as<int32_t>(), nullptr,
                   one_block ? druns.as<int32_t>() : nullptr);
  std::vector<int32_t> ids(slots);
  std::vector<float> w(slots);
  moe_route(logits.data(), n, s.experts, k, s.renorm, ids.data(), w.data());
  std::vector<Check> checks = {compare_exact("ids", download<int32_t>(dids, slots), ids),
                               compare("weights", download<float>(dw, slots), w, kTolRouteW)};
  for (Check& c : check_sort(ids, begin, e, doff, dsorted, dpos)) checks.push_back(std::move(c));
  if (one_block) checks.push_back(check_runs(ids, begin, e, druns));
  return checks;
}

// The router, routing and sort in one launch (decode's 1-8 tokens): the
// logits against the CPU's matmul; ids, weights and the sort against the
// CPU's routing of the GPU's own logits (a near tie may fall either way
// between two sums). Launched twice, outputs poisoned between, so the second
// launch shows the first left its block count at zero. norm_in: the launch
// that also runs the post-attention norm (launch_moe_norm_router_route): its
// normed rows against the CPU's rmsnorm rounded to bf16, the logits against
// the matmul of the rows it wrote. cluster: one token's cluster kernel,
// which must fit on the test's GPU (the check "cluster_fits"); else the
// block-per-expert kernel, as where the cluster does not fit.
std::vector<Check> run_moe_router_route(const MoeShape& s, int begin, int local, bool norm_in, bool cluster,
                                        std::mt19937& rng) {
  std::vector<Check> checks;
  if (cluster && s.tokens == 1) {
    const bool fits = moe_router_cluster_fits(s.hidden, norm_in);
    checks.push_back(compare_exact("cluster_fits", std::vector<int32_t>{fits}, std::vector<int32_t>{1}));
  }
  const int n = s.tokens, k = s.top_k, h = s.hidden, te = s.experts, slots = n * k, e = local > 0 ? local : te;
  auto x = random_bf16_values(static_cast<size_t>(n) * h, 1.0f, rng);
  const auto res = random_bf16_values(static_cast<size_t>(n) * h, 3.0f, rng);
  const auto norm_w = random_bf16_values(h, 1.5f, rng);
  const auto rw = random_bf16_values(static_cast<size_t>(te) * h, 0.2f, rng);
  auto dx = norm_in ? poisoned_bf16(x.size()) : upload_bf16(x), drw = upload_bf16(rw);
  auto dres = upload(res), dnw = upload_bf16(norm_w), dcount = upload(std::vector<int32_t>(1, 0));
  DeviceBuffer dlogits, dids, dw, doff, dsorted, dpos, druns;
  for (int launch = 0; launch < 2; ++launch) {
    dlogits = poisoned_f32(static_cast<size_t>(n) * te);
    dids = upload(std::vector<int32_t>(slots, -1));
    dw = poisoned_f32(slots);
    doff = upload(std::vector<int32_t>(e + 1, -1));
    dsorted = upload(std::vector<int32_t>(slots, -1));
    dpos = upload(std::vector<int32_t>(slots, -1));
    druns = upload(std::vector<int32_t>(slots, 0x7fff7fff));
    if (norm_in)
      launch_moe_norm_router_route({dres.as<float>(), dnw.as<bf16>(), 1e-5f}, dx.as<bf16>(), drw.as<bf16>(), n, h, te,
                                   k, s.renorm, begin, e, dlogits.as<float>(), dcount.as<int32_t>(), dids.as<int32_t>(),
                                   dw.as<float>(), doff.as<int32_t>(), dsorted.as<int32_t>(), dpos.as<int32_t>(),
                                   nullptr, druns.as<int32_t>(), cluster);
    else
      launch_moe_router_route(dx.as<bf16>(), drw.as<bf16>(), n, h, te, k, s.renorm, begin, e, dlogits.as<float>(),
                              dcount.as<int32_t>(), dids.as<int32_t>(), dw.as<float>(), doff.as<int32_t>(),
                              dsorted.as<int32_t>(), dpos.as<int32_t>(), nullptr, druns.as<int32_t>(), cluster);
  }
  if (norm_in) {
    std::vector<float> ref_normed(x.size());
    rmsnorm(res.data(), norm_w.data(), n, h, 1e-5f, ref_normed.data());
    for (float& v : ref_normed) v = testing::round_bf16(v);
    x = download_bf16(dx, x.size());
    checks.push_back(compare("normed", x, ref_normed, kTolBf16Step));
  }
  const auto logits = download<float>(dlogits, static_cast<size_t>(n) * te);
  std::vector<float> ref_logits(logits.size());
  matmul(x.data(), n, h, rw.data(), te, nullptr, ref_logits.data(), nullptr);
  std::vector<int32_t> ids(slots);
  std::vector<float> w(slots);
  moe_route(logits.data(), n, te, k, s.renorm, ids.data(), w.data());
  for (Check& c : std::vector<Check>{compare("logits", logits, ref_logits, kTolF32),
                                     compare_exact("ids", download<int32_t>(dids, slots), ids),
                                     compare("weights", download<float>(dw, slots), w, kTolRouteW),
                                     compare_exact("count", download<int32_t>(dcount, 1), std::vector<int32_t>{0})})
    checks.push_back(std::move(c));
  for (Check& c : check_sort(ids, begin, e, doff, dsorted, dpos)) checks.push_back(std::move(c));
  checks.push_back(check_runs(ids, begin, e, druns));
  return checks;
}

// The combine with the next layer's add_rmsnorm (launch_moe_combine_norm):
// the token's combined row (its slots' expert rows by their weights, plus the
// shared experts' row when `shared`, rounded to bf16) added into residual, and
// rmsnorm of that. Experts [begin, begin + local) only when local > 0: the
// other slots have no row (slot_pos -1) and are left out. Launched with the
// inputs read after the programmatic wait, then before it (decode's form).
std::vector<Check> run_moe_combine_norm(const MoeShape& s, int begin, int local, bool shared, std::mt19937& rng) {
  std::vector<int32_t> ids;
  std::vector<float> w;
  random_routes(s, rng, ids, w);
  const int n = s.tokens, k = s.top_k, h = s.hidden, slots = n * k, e = local > 0 ? local : s.experts;
  auto dids = upload(ids), dw = upload(w);
  auto doff = upload(std::vector<int32_t>(e + 1, 0));
  auto dsorted = upload(std::vector<int32_t>(slots, 0)), dpos = upload(std::vector<int32_t>(slots, 0));
  launch_moe_align_local(dids.as<int32_t>(), slots, local > 0 ? begin : 0, e, doff.as<int32_t>(), dsorted.as<int32_t>(),
                         dpos.as<int32_t>(), nullptr);
  const auto pos = download<int32_t>(dpos, slots);
  const auto eo = random_bf16_values(static_cast<size_t>(slots) * h, 1.0f, rng);
  const auto add = random_bf16_values(static_cast<size_t>(n) * h, 1.0f, rng);
  const auto res = random_bf16_values(static_cast<size_t>(n) * h, 2.0f, rng);
  const auto norm_w = random_bf16_values(h, 1.5f, rng);
  auto deo = upload_bf16(eo), dadd = upload_bf16(add), dnw = upload_bf16(norm_w);
  DeviceBuffer dres[2], dnormed[2];
  for (int early = 0; early < 2; ++early) {
    dres[early] = upload(res);
    dnormed[early] = poisoned_bf16(static_cast<size_t>(n) * h);
    launch_moe_combine_norm(deo.as<bf16>(), dpos.as<int32_t>(), dw.as<float>(), n, k, h,
                            shared ? dadd.as<bf16>() : nullptr, dres[early].as<float>(), dnw.as<bf16>(), 1e-5f,
                            dnormed[early].as<bf16>(), nullptr, early == 1);
  }
  std::vector<float> x = res, ref(x.size());
  for (int t = 0; t < n; ++t)
    for (int c = 0; c < h; ++c) {
      float acc = 0.0f;
      for (int j = 0; j < k; ++j) {
        const int p = pos[t * k + j];
        if (p >= 0) acc += eo[static_cast<size_t>(p) * h + c] * w[t * k + j];
      }
      if (shared) acc += add[static_cast<size_t>(t) * h + c];
      x[static_cast<size_t>(t) * h + c] += testing::round_bf16(acc);
    }
  rmsnorm(x.data(), norm_w.data(), n, h, 1e-5f, ref.data());
  return {compare("residual", download<float>(dres[0], x.size()), x, kTolF32),
          compare("normed", download_bf16(dnormed[0], ref.size()), ref, kTolBf16),
          compare("residual (inputs before the wait)", download<float>(dres[1], x.size()), x, kTolF32),
          compare("normed (inputs before the wait)", download_bf16(dnormed[1], ref.size()), ref, kTolBf16)};
}

// C[i] = A[a_rows[i] / k] . W[expert of i]^T over the sorted slots: the
// mma.sync tiles (tile_n 0) or the wgmma kernel's 128 x tile_n tiles, with
// A's rows gathered through a_rows, or (gather false) A already in sorted
// order, as the down projection has it.
std::vector<Check> run_grouped_gemm(const MoeShape& s, int tile_n, bool gather, bool gated, std::mt19937& rng) {
  std::vector<int32_t> ids;
  std::vector<float> w;
  random_routes(s, rng, ids, w);
  const int slots = static_cast<int>(ids.size()), e = s.experts, k = s.top_k, h = s.hidden, n = 2 * s.inter;
  const auto x = random_bf16_values(static_cast<size_t>(s.tokens) * h, 1.0f, rng);
  const auto wt = random_bf16_values(static_cast<size_t>(e) * n * h, 0.1f, rng);
  auto dids = upload(ids), dx = upload_bf16(x), dwt = upload_bf16(wt);
  auto doff = upload(std::vector<int32_t>(e + 1, 0));
  auto dsorted = upload(std::vector<int32_t>(slots, 0)), dpos = upload(std::vector<int32_t>(slots, 0));
  auto dc = poisoned_bf16(static_cast<size_t>(slots) * n);
  launch_moe_align(dids.as<int32_t>(), slots, e, doff.as<int32_t>(), dsorted.as<int32_t>(), dpos.as<int32_t>(),
                   nullptr);
  const auto sorted = download<int32_t>(dsorted, slots);
  std::vector<float> x_sorted;  // [slots, h]: A in sorted order, for gather false
  for (int i = 0; i < slots && !gather; ++i)
    x_sorted.insert(x_sorted.end(), x.begin() + static_cast<size_t>(sorted[i] / k) * h,
                    x.begin() + static_cast<size_t>(sorted[i] / k + 1) * h);
  auto dxs = upload_bf16(gather ? std::vector<float>(1) : x_sorted);
  const GroupedGemmArgs g{gather ? dx.as<bf16>() : dxs.as<bf16>(),
                          gather ? dsorted.as<int32_t>() : nullptr,
                          gather ? k : 1,
                          dwt.as<bf16>(),
                          doff.as<int32_t>(),
                          e,
                          slots,
                          n,
                          h,
                          dc.as<bf16>(),
                          gated};
  if (tile_n > 0) launch_grouped_gemm_wgmma(g, tile_n, nullptr);
  else launch_grouped_gemm(g, /*row_invariant=*/true, nullptr);
  std::vector<float> ref(static_cast<size_t>(slots) * n);
  for (int i = 0; i < slots; ++i) {
    const int slot = sorted[i], ex = ids[slot], tok = slot / k;
    matmul(x.data() + static_cast<size_t>(tok) * h, 1, h, wt.data() + static_cast<size_t>(ex) * n * h, n, nullptr,
           ref.data() + static_cast<size_t>(i) * n, nullptr);
  }
  if (gated) {  // [slots, n / 2] = silu(gate) * up, from the products rounded to bf16
    std::vector<float> act(static_cast<size_t>(slots) * s.inter);
    for (auto& v : ref) v = testing::round_bf16(v);
    silu_mul(ref.data(), slots, s.inter, act.data());
    ref = std::move(act);
  }
  return {compare(gated ? "act" : "out", download_bf16(dc, ref.size()), ref, kTolBf16)};
}

// The whole expert block as the backend runs it: align, gate/up grouped GEMM,
// SiLU-mul, down grouped GEMM, weighted combine; or with `skinny` (decode's
// small batches) the gated skinny kernel and the plain one in place of the
// three middle steps, twice: each position's expert looked up through the
// sort, then read from the runs a one-launch routing writes (MoeRouting::runs;
// the down projection reads them before its wait, as decode launches it).
std::vector<Check> run_moe_experts(const MoeShape& s, bool skinny, std::mt19937& rng) {
  std::vector<int32_t> ids;
  std::vector<float> w;
  random_routes(s, rng, ids, w);
  const int n = s.tokens, e = s.experts, k = s.top_k, h = s.hidden, mi = s.inter, slots = n * k;
  const auto x = random_bf16_values(static_cast<size_t>(n) * h, 1.0f, rng);
  const auto wgu = random_bf16_values(static_cast<size_t>(e) * 2 * mi * h, 0.1f, rng);
  const auto wd = random_bf16_values(static_cast<size_t>(e) * h * mi, 0.1f, rng);
  auto dids = upload(ids), dw = upload(w), dx = upload_bf16(x), dgu = upload_bf16(wgu), dwd = upload_bf16(wd);
  auto doff = upload(std::vector<int32_t>(e + 1, 0));
  auto dsorted = upload(std::vector<int32_t>(slots, 0)), dpos = upload(std::vector<int32_t>(slots, 0));
  auto dgu_out = poisoned_bf16(static_cast<size_t>(slots) * 2 * mi),
       dact = poisoned_bf16(static_cast<size_t>(slots) * mi);
  auto deo = poisoned_bf16(static_cast<size_t>(slots) * h), dout = poisoned_bf16(static_cast<size_t>(n) * h);
  launch_moe_align(dids.as<int32_t>(), slots, e, doff.as<int32_t>(), dsorted.as<int32_t>(), dpos.as<int32_t>(),
                   nullptr);
  // The skinny kernels' expert rows [slots, h] into deo.
  const auto skinny_experts = [&](const int32_t* runs) {
    const MoeRouting r{.topk_ids = dids.as<int32_t>(),
                       .sorted_slots = dsorted.as<int32_t>(),
                       .offsets = doff.as<int32_t>(),
                       .num_experts = e,
                       .num_tokens = n,
                       .num_rows = slots,
                       .runs = runs};
    launch_moe_skinny(r,
                      {.a = dx.as<bf16>(),
                       .a_rows = dsorted.as<int32_t>(),
                       .a_row_div = k,
                       .w = dgu.as<bf16>(),
                       .n = mi,
                       .k = h,
                       .gated = true,
                       .c = dact.as<bf16>()},
                      nullptr);
    launch_moe_skinny(r,
                      {.a = dact.as<bf16>(),
                       .w = dwd.as<bf16>(),
                       .n = h,
                       .k = mi,
                       .c = deo.as<bf16>(),
                       .runs_before_wait = runs != nullptr},
                      nullptr);
  };
  std::vector<float> out_runs;
  if (skinny) {
    const auto druns = upload(expected_runs(ids, 0, e));  // as a one-launch routing writes them
    skinny_experts(druns.as<int32_t>());
    launch_moe_combine(deo.as<bf16>(), dpos.as<int32_t>(), dw.as<float>(), n, k, h, dout.as<bf16>(), nullptr);
    out_runs = download_bf16(dout, static_cast<size_t>(n) * h);
    dact = poisoned_bf16(static_cast<size_t>(slots) * mi);
    deo = poisoned_bf16(static_cast<size_t>(slots) * h);
    dout = poisoned_bf16(static_cast<size_t>(n) * h);
    skinny_experts(nullptr);
  } else {
    // As the backend runs it outside batch-invariant mode (the fused gated wgmma GEMM where it runs).
    launch_moe_gate_up(
        {dx.as<bf16>(), dsorted.as<int32_t>(), k, dgu.as<bf16>(), doff.as<int32_t>(), e, slots, 2 * mi, h, nullptr},
        dgu_out.as<bf16>(), dact.as<bf16>(), /*row_invariant=*/false, nullptr);
    launch_grouped_gemm(
        {dact.as<bf16>(), nullptr, 1, dwd.as<bf16>(), doff.as<int32_t>(), e, slots, h, mi, deo.as<bf16>()},
        /*row_invariant=*/false, nullptr);
  }
  launch_moe_combine(deo.as<bf16>(), dpos.as<int32_t>(), dw.as<float>(), n, k, h, dout.as<bf16>(), nullptr);
  std::vector<float> ref(static_cast<size_t>(n) * h, 0.0f), gu(2 * mi), act(mi), y(h);
  for (int t = 0; t < n; ++t)
    for (int j = 0; j < k; ++j) {
      const int ex = ids[t * k + j];
      matmul(x.data() + static_cast<size_t>(t) * h, 1, h, wgu.data() + static_cast<size_t>(ex) * 2 * mi * h, 2 * mi,
             nullptr, gu.data(), nullptr);
      silu_mul(gu.data(), 1, mi, act.data());
      matmul(act.data(), 1, mi, wd.data() + static_cast<size_t>(ex) * h * mi, h, nullptr, y.data(), nullptr);
      for (int i = 0; i < h; ++i) ref[static_cast<size_t>(t) * h + i] += w[t * k + j] * y[i];
    }
  std::vector<Check> checks = {compare("out", download_bf16(dout, ref.size()), ref, kTolBf16)};
  if (skinny) checks.push_back(compare("out (runs)", out_runs, ref, kTolBf16));
  return checks;
}

// " experts begin+local" for an expert-parallel share (local > 0).
std::string expert_share(int begin, int local) {
  return local > 0 ? " experts " + std::to_string(begin) + "+" + std::to_string(local) : "";
}

}  // namespace

OpCase gemm_case(GemmShape s) { return make_case("gemm", mnk(s), s, run_gemm); }
OpCase gemv_case(GemmShape s) { return make_case("gemv", mnk(s), s, run_gemv); }
OpCase gemv_silu_mul_case(GemmShape s) { return make_case("gemv_silu_mul", mnk(s), s, run_gemv_silu_mul); }
OpCase gemm_row_invariant_case(GemmShape s) {
  return make_case("gemm_row_invariant", mnk(s), s, run_gemm_row_invariant);
}
OpCase gemm_buckets_case(std::vector<int> ms, int n, int k) {
  const std::string shape = "m" + join(ms) + " n" + std::to_string(n) + " k" + std::to_string(k);
  return OpCase{"gemm_buckets", shape, [ms, n, k](std::mt19937& rng) { return run_gemm_buckets(ms, n, k, rng); }};
}
OpCase moe_topk_case(const MoeShape& s) { return make_case("moe_topk", moe_name(s), s, run_moe_topk); }
OpCase moe_align_case(const MoeShape& s, int begin, int local) {
  return make_case(
      "moe_align", moe_name(s) + expert_share(begin, local), s,
      [begin, local](const MoeShape& sh, std::mt19937& rng) { return run_moe_align(sh, begin, local, rng); });
}
OpCase moe_route_case(const MoeShape& s, int begin, int local) {
  return make_case(
      "moe_route", moe_name(s) + (s.renorm ? " renorm" : "") + expert_share(begin, local), s,
      [begin, local](const MoeShape& sh, std::mt19937& rng) { return run_moe_route(sh, begin, local, rng); });
}
OpCase moe_router_route_case(const MoeShape& s, int begin, int local, bool norm_in, bool one_token_cluster) {
  return make_case(
      norm_in ? "moe_norm_router_route" : "moe_router_route",
      moe_name(s) + (s.renorm ? " renorm" : "") + expert_share(begin, local) + (one_token_cluster ? "" : " no cluster"),
      s, [begin, local, norm_in, one_token_cluster](const MoeShape& sh, std::mt19937& rng) {
        return run_moe_router_route(sh, begin, local, norm_in, one_token_cluster, rng);
      });
}
OpCase moe_combine_norm_case(const MoeShape& s, int begin, int local, bool shared) {
  return make_case("moe_combine_norm", moe_name(s) + (shared ? " shared" : "") + expert_share(begin, local), s,
                   [begin, local, shared](const MoeShape& sh, std::mt19937& rng) {
                     return run_moe_combine_norm(sh, begin, local, shared, rng);
                   });
}
OpCase grouped_gemm_case(const MoeShape& s) {
  return make_case("grouped_gemm", moe_name(s), s,
                   [](const MoeShape& sh, std::mt19937& rng) { return run_grouped_gemm(sh, 0, true, false, rng); });
}
OpCase grouped_gemm_wgmma_case(const MoeShape& s, int tile_n, bool gather, bool gated) {
  return make_case(
      "grouped_gemm_wgmma",
      moe_name(s) + " tile_n" + std::to_string(tile_n) + (gather ? " gather" : " sorted") + (gated ? " gated" : ""), s,
      [tile_n, gather, gated](const MoeShape& sh, std::mt19937& rng) {
        return run_grouped_gemm(sh, tile_n, gather, gated, rng);
      });
}
OpCase moe_experts_case(const MoeShape& s) {
  return make_case("moe_experts", moe_name(s), s,
                   [](const MoeShape& sh, std::mt19937& rng) { return run_moe_experts(sh, false, rng); });
}
OpCase moe_skinny_case(const MoeShape& s) {
  return make_case("moe_skinny", moe_name(s), s,
                   [](const MoeShape& sh, std::mt19937& rng) { return run_moe_experts(sh, true, rng); });
}

}  // namespace baton::cuda::ops

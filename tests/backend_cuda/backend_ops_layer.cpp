// backend-ops runners: the per-layer elementwise ops (embedding, add +
// RMSNorm, SiLU-mul, QKV bias/norm + RoPE + KV-cache write) and the fill and
// convert kernels the weight loader uses, against the CPU ops.
#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <optional>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/kernels.h"
#include "backend_ops.h"
#include "common/float16.h"

namespace baton::cuda::ops {
namespace {

using testing::download;
using testing::download_bf16;
using testing::poisoned_bf16;
using testing::poisoned_f32;
using testing::random_bf16_values;
using testing::upload;
using testing::upload_bf16;

std::string rows_cols(RowsShape s) { return std::to_string(s.rows) + "x" + std::to_string(s.cols); }

std::vector<Check> run_embedding(RowsShape s, std::mt19937& rng) {
  const int vocab = 300, hidden = s.cols, n = s.rows;
  const auto table = random_bf16_values(static_cast<size_t>(vocab) * hidden, 1.0f, rng);
  std::vector<int32_t> ids(n);
  for (auto& i : ids) i = static_cast<int32_t>(rng() % vocab);
  auto dt = upload_bf16(table);
  auto di = upload(ids);
  auto dout = poisoned_f32(static_cast<size_t>(n) * hidden);
  launch_embedding(di.as<int32_t>(), dt.as<bf16>(), dout.as<float>(), n, hidden, vocab, nullptr);
  std::vector<float> ref(static_cast<size_t>(n) * hidden);
  embedding(table.data(), hidden, ids.data(), n, ref.data());
  return {compare_exact("residual", download<float>(dout, ref.size()), ref)};
}

// x = residual + add; out = rmsnorm(x) * w, residual = x. Then the gathered
// form (the final norm at sampling rows) over rows {last, 0, middle}, which
// leaves the residual alone.
std::vector<Check> run_add_rmsnorm(RowsShape s, std::mt19937& rng) {
  const int n = s.rows, hidden = s.cols;
  const size_t elems = static_cast<size_t>(n) * hidden;
  const auto res = random_bf16_values(elems, 2.0f, rng), add = random_bf16_values(elems, 2.0f, rng);
  const auto w = random_bf16_values(hidden, 1.5f, rng);
  auto dres = upload(res);
  auto dadd = upload_bf16(add), dw = upload_bf16(w);
  auto dout = poisoned_bf16(elems);
  launch_add_rmsnorm(dres.as<float>(), dadd.as<bf16>(), nullptr, dw.as<bf16>(), dout.as<bf16>(), nullptr, n, hidden,
                     1e-5f, nullptr);
  std::vector<float> x(elems), ref(elems);
  for (size_t i = 0; i < elems; ++i) x[i] = res[i] + add[i];
  rmsnorm(x.data(), w.data(), n, hidden, 1e-5f, ref.data());
  std::vector<Check> checks = {compare("out", download_bf16(dout, elems), ref, kTolBf16),
                               compare("residual", download<float>(dres, elems), x, kTolF32)};
  const std::vector<int32_t> rows = {n - 1, 0, n / 2};
  auto drows = upload(rows);
  auto dout2 = poisoned_bf16(rows.size() * hidden);
  launch_add_rmsnorm(dres.as<float>(), nullptr, nullptr, dw.as<bf16>(), dout2.as<bf16>(), drows.as<int32_t>(),
                     static_cast<int>(rows.size()), hidden, 1e-5f, nullptr);
  std::vector<float> ref2(rows.size() * hidden);
  for (size_t r = 0; r < rows.size(); ++r)
    rmsnorm(x.data() + static_cast<size_t>(rows[r]) * hidden, w.data(), 1, hidden, 1e-5f, ref2.data() + r * hidden);
  checks.push_back(compare("gathered", download_bf16(dout2, ref2.size()), ref2, kTolBf16));
  return checks;
}

std::vector<Check> run_silu_mul(RowsShape s, std::mt19937& rng) {
  const int n = s.rows, inter = s.cols;
  const auto gu = random_bf16_values(static_cast<size_t>(n) * 2 * inter, 4.0f, rng);
  auto d = upload_bf16(gu);
  auto dout = poisoned_bf16(static_cast<size_t>(n) * inter);
  launch_silu_mul(d.as<bf16>(), dout.as<bf16>(), n, inter, nullptr);
  std::vector<float> ref(static_cast<size_t>(n) * inter);
  silu_mul(gu.data(), n, inter, ref.data());
  return {compare("out", download_bf16(dout, ref.size()), ref, kTolBf16)};
}

// launch_convert_to_bf16 from fp32, fp16 and bf16 against the host's
// rounding; launch_fill_const exactly; launch_fill_random: in range, the
// same for the same seed, and not constant.
std::vector<Check> run_fill_convert(RowsShape s, std::mt19937& rng) {
  const int64_t n = static_cast<int64_t>(s.rows) * s.cols;
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  std::vector<float> f32(n);
  for (auto& x : f32) x = dist(rng);
  std::vector<uint16_t> f16(n), b16(n);
  std::vector<float> ref32(n), ref16(n), refb(n);
  for (int64_t i = 0; i < n; ++i) {
    f16[i] = float_to_fp16(f32[i]);
    b16[i] = float_to_bf16(f32[i]);
    ref32[i] = bf16_to_float(float_to_bf16(f32[i]));
    ref16[i] = bf16_to_float(float_to_bf16(fp16_to_float(f16[i])));
    refb[i] = bf16_to_float(b16[i]);
  }
  std::vector<Check> checks;
  auto convert = [&](const DeviceBuffer& src, int dtype, const std::vector<float>& ref, const char* name) {
    auto dout = poisoned_bf16(n);
    launch_convert_to_bf16(src.get(), dtype, dout.as<bf16>(), n, nullptr);
    checks.push_back(compare_exact(name, download_bf16(dout, n), ref));
  };
  convert(upload(f32), 0, ref32, "from_f32");
  convert(upload(f16), 1, ref16, "from_f16");
  convert(upload(b16), 2, refb, "from_bf16");
  auto dconst = poisoned_bf16(n);
  launch_fill_const(dconst.as<bf16>(), n, 1.0f, nullptr);
  checks.push_back(compare_exact("fill_const", download_bf16(dconst, n), std::vector<float>(n, 1.0f)));
  const float scale = 0.5f;
  auto dr1 = poisoned_bf16(n), dr2 = poisoned_bf16(n);
  launch_fill_random(dr1.as<bf16>(), n, scale, 1234, nullptr);
  launch_fill_random(dr2.as<bf16>(), n, scale, 1234, nullptr);
  const auto r1 = download_bf16(dr1, n), r2 = download_bf16(dr2, n);
  checks.push_back(compare_exact("fill_random_repeat", r1, r2));
  int64_t outside = 0;
  for (float x : r1) outside += !(x >= -scale && x <= scale);
  checks.push_back(Check{"fill_random_range", static_cast<double>(outside) / n, kExact, "mismatch"});
  const auto [lo, hi] = std::minmax_element(r1.begin(), r1.end());
  checks.push_back(Check{"fill_random_spread", n > 1 && *lo == *hi ? 1.0 : 0.0, kExact, "mismatch"});
  return checks;
}

std::vector<Check> run_qkv_rope_cache(const RopeShape& s, std::mt19937& rng) {
  const int nh = s.num_heads, nkv = s.num_kv_heads, hd = s.head_dim, n = s.tokens, bs = s.block_size;
  const int blocks = (n + bs - 1) / bs + 2, layers = 2, layer = 1;
  RopeScaling sc;
  sc.rope_type = "llama3";
  sc.factor = 8.0;
  sc.original_max_position_embeddings = 64;
  const auto inv = rope_inv_freq(hd, 500000.0, s.qwen3 ? std::nullopt : std::optional<RopeScaling>(sc));
  const int width = (nh + 2 * nkv) * hd;
  const auto qkv = random_bf16_values(static_cast<size_t>(n) * width, 2.0f, rng);
  const auto bias = random_bf16_values(width, 0.5f, rng);
  const auto qn = random_bf16_values(hd, 1.5f, rng), kn = random_bf16_values(hd, 1.5f, rng);
  std::vector<int32_t> pos(n);
  std::vector<int64_t> slots(n);
  std::vector<int> perm(static_cast<size_t>(blocks) * bs);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int t = 0; t < n; ++t) {
    pos[t] = static_cast<int32_t>(rng() % 8192);
    slots[t] = perm[t];
  }
  PagedCache cache = make_paged_cache(layers, nkv, hd, bs, blocks, rng, s.fp8 ? DType::kF8E4M3 : DType::kBF16);
  auto dqkv = upload_bf16(qkv), dbias = upload_bf16(bias), dqn = upload_bf16(qn), dkn = upload_bf16(kn);
  auto dpos = upload(pos);
  auto dslots = upload(slots);
  auto dinv = upload(inv);
  auto dq = poisoned_bf16(static_cast<size_t>(n) * nh * hd);
  QkvRopeArgs a;
  a.qkv = dqkv.as<bf16>();
  a.bias = s.qwen3 ? nullptr : dbias.as<bf16>();
  a.q_norm = s.qwen3 ? dqn.as<bf16>() : nullptr;
  a.k_norm = s.qwen3 ? dkn.as<bf16>() : nullptr;
  a.eps = 1e-6f;
  a.positions = dpos.as<int32_t>();
  a.slot_mapping = dslots.as<int64_t>();
  a.inv_freq = dinv.as<float>();
  a.q_out = dq.as<bf16>();
  a.kv = cache.kv;
  a.layer = layer;
  a.num_tokens = n;
  a.num_heads = nh;
  a.num_kv_heads = nkv;
  a.head_dim = hd;
  a.rotation_before_wait = s.rotation_before_wait;
  launch_qkv_rope_cache(a, nullptr);
  // CPU: bias, split, q/k norm, rope, write_kv.
  std::vector<float> q(static_cast<size_t>(n) * nh * hd), k(static_cast<size_t>(n) * nkv * hd), v(k.size());
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < width; ++i) {
      const float x = qkv[static_cast<size_t>(t) * width + i] + (s.qwen3 ? 0.0f : bias[i]);
      if (i < nh * hd) q[static_cast<size_t>(t) * nh * hd + i] = x;
      else if (i < (nh + nkv) * hd) k[static_cast<size_t>(t) * nkv * hd + i - nh * hd] = x;
      else v[static_cast<size_t>(t) * nkv * hd + i - (nh + nkv) * hd] = x;
    }
  if (s.qwen3) {
    rmsnorm(q.data(), qn.data(), static_cast<int64_t>(n) * nh, hd, 1e-6f, q.data());
    rmsnorm(k.data(), kn.data(), static_cast<int64_t>(n) * nkv, hd, 1e-6f, k.data());
  }
  apply_rope(q.data(), n, nh, hd, pos.data(), inv.data());
  apply_rope(k.data(), n, nkv, hd, pos.data(), inv.data());
  if (s.fp8) {  // e4m3 codes: at most one step apart (a value on a rounding edge), never more
    std::vector<uint8_t> ref_codes = cache.host_fp8;
    write_kv(k.data(), v.data(), slots.data(), n, cache.layout, layer, ref_codes.data());
    std::vector<uint8_t> codes(ref_codes.size());
    BATON_CUDA_CHECK(cudaMemcpy(codes.data(), cache.dev.get(), codes.size(), cudaMemcpyDeviceToHost));
    size_t far = 0, off_by_one = 0;
    for (size_t i = 0; i < codes.size(); ++i) {
      const int a = codes[i], b = ref_codes[i];
      const bool same_sign = (a & 0x80) == (b & 0x80);
      const int steps = same_sign ? std::abs((a & 0x7f) - (b & 0x7f)) : (a & 0x7f) + (b & 0x7f);
      far += steps > 1;
      off_by_one += steps == 1;
    }
    return {compare("q", download_bf16(dq, q.size()), q, kTolBf16),
            Check{"cache_fp8_codes_off_by_more_than_one", static_cast<double>(far), kExact, "count"},
            Check{"cache_fp8_codes_off_by_one", static_cast<double>(off_by_one) / codes.size(), 1e-3, "fraction"}};
  }
  std::vector<float> ref_cache = cache.host;
  write_kv(k.data(), v.data(), slots.data(), n, cache.layout, layer, ref_cache.data());
  return {compare("q", download_bf16(dq, q.size()), q, kTolBf16),
          compare("cache", download_bf16(cache.dev, ref_cache.size()), ref_cache, kTolBf16)};
}

}  // namespace

OpCase embedding_case(RowsShape s) { return make_case("embedding", rows_cols(s), s, run_embedding); }
OpCase add_rmsnorm_case(RowsShape s) { return make_case("add_rmsnorm", rows_cols(s), s, run_add_rmsnorm); }
OpCase silu_mul_case(RowsShape s) { return make_case("silu_mul", rows_cols(s), s, run_silu_mul); }
OpCase fill_convert_case(RowsShape s) { return make_case("fill_convert", rows_cols(s), s, run_fill_convert); }
OpCase qkv_rope_cache_case(const RopeShape& s) {
  const std::string shape = std::string(s.qwen3 ? "qwen3" : "llama3") + " hd" + std::to_string(s.head_dim) + " nh" +
                            std::to_string(s.num_heads) + " nkv" + std::to_string(s.num_kv_heads) + " t" +
                            std::to_string(s.tokens) + " bs" + std::to_string(s.block_size) + (s.fp8 ? " fp8" : "") +
                            (s.rotation_before_wait ? " rotation-early" : "");
  return make_case("qkv_rope_cache", shape, s, run_qkv_rope_cache);
}

}  // namespace baton::cuda::ops

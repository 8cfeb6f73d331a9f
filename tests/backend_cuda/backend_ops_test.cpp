// The backend-ops suite's driver: one parameterised test over all_cases()
// (backend_ops_cases.cpp), the comparison helpers, and the summary of the
// largest error per op and output, printed when the suite ends.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <tuple>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/gemm.h"
#include "backend_ops.h"

namespace baton::cuda::ops {

Check compare(const std::string& output, const std::vector<float>& out, const std::vector<float>& ref, double tol) {
  if (out.size() != ref.size()) return Check{output, INFINITY, tol, "rel_l2"};
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (std::isnan(out[i]) || std::isnan(ref[i])) return Check{output, INFINITY, tol, "rel_l2"};
    const double d = static_cast<double>(out[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  // An all-zero reference: the absolute L2 norm of the output instead.
  const double err = den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
  return Check{output, err, tol, "rel_l2"};
}

Check compare_max_abs(const std::string& output, const std::vector<float>& out, const std::vector<float>& ref,
                      double tol) {
  if (out.size() != ref.size()) return Check{output, INFINITY, tol, "max_abs"};
  double worst = 0.0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (std::isnan(out[i]) || std::isnan(ref[i])) return Check{output, INFINITY, tol, "max_abs"};
    worst = std::max(worst, std::fabs(static_cast<double>(out[i]) - ref[i]));
  }
  return Check{output, worst, tol, "max_abs"};
}

PagedCache make_paged_cache(int layers, int num_kv_heads, int head_dim, int block_size, int num_blocks,
                            std::mt19937& rng, DType dtype) {
  return make_paged_cache(KvLayout{layers, num_kv_heads, head_dim, block_size, num_blocks, dtype}, rng);
}

PagedCache make_paged_cache(const KvLayout& layout, std::mt19937& rng) {
  PagedCache p;
  p.layout = layout;
  const int block_size = layout.block_size;
  p.host = testing::random_bf16_values(p.layout.block_elems() * layout.num_blocks, 1.0f, rng);
  if (layout.dtype == DType::kF8E4M3) {
    p.host_fp8.resize(p.host.size());
    store_kv_row(p.host.data(), static_cast<int64_t>(p.host.size()), DType::kF8E4M3, p.host_fp8.data(), 0);
    p.dev = testing::upload(p.host_fp8);
    p.kv.fp8 = p.dev.as<uint8_t>();
  } else {
    p.dev = testing::upload_bf16(p.host);
    p.kv.base = p.dev.as<bf16>();
  }
  p.kv.block_elems = p.layout.block_elems();
  p.kv.layer_block_elems = p.layout.layer_block_elems();
  p.kv.half_elems = p.layout.half_layer_block_elems();
  p.kv.token_elems = p.layout.token_elems();
  p.kv.block_size = block_size;
  return p;
}

DeviceBatch upload_batch(const Batch& b) {
  return DeviceBatch{testing::upload(b.query_start), testing::upload(b.seq_lens), testing::upload(b.block_tables)};
}

AttnArgs device_attention_args(const DeviceBatch& d, const Batch& b, const PagedCache& cache, int layer, const bf16* q,
                               bf16* out, int num_heads, float scale) {
  AttnArgs a;
  a.q = q;
  a.out = out;
  a.kv = cache.kv;
  a.layer = layer;
  a.query_start = d.query_start.as<int32_t>();
  a.seq_lens = d.seq_lens.as<int32_t>();
  a.block_tables = d.block_tables.as<int32_t>();
  a.max_blocks_per_seq = b.max_blocks_per_seq;
  a.num_seqs = static_cast<int>(b.seq_lens.size());
  a.num_heads = num_heads;
  a.scale = scale;
  return a;
}

PagedAttentionArgs reference_attention_args(const Batch& b, const PagedCache& cache, int layer, const float* q,
                                            int num_heads, float scale) {
  PagedAttentionArgs c;
  c.q = q;
  c.num_tokens = b.num_tokens;
  c.num_heads = num_heads;
  c.positions = b.positions.data();
  c.seq_of_token = b.seq_of_token.data();
  c.block_tables = b.block_tables.data();
  c.max_blocks_per_seq = b.max_blocks_per_seq;
  c.kv_cache = cache.host_cache();
  c.layout = cache.layout;
  c.layer = layer;
  c.scale = scale;
  return c;
}

std::string join(const std::vector<int>& v) {
  if (v.size() > 2 && std::all_of(v.begin(), v.end(), [&](int x) { return x == v[0]; }))
    return std::to_string(v[0]) + "x" + std::to_string(v.size());  // 40 equal values: "1x40"
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

namespace {

// The largest error seen per (op, output), for the closing table.
struct Worst {
  double err = 0.0, tol = 0.0;
  std::string metric, shape;
  int cases = 0;
};
std::map<std::pair<std::string, std::string>, Worst>& worst_errors() {
  static std::map<std::pair<std::string, std::string>, Worst> m;
  return m;
}

class SummaryPrinter : public ::testing::Environment {
 public:
  void TearDown() override {
    if (worst_errors().empty()) return;
    std::printf("\nbackend-ops: largest error per op and output (err <= tol passes)\n");
    std::printf("%-22s %-12s %6s %-9s %12s %10s  %s\n", "op", "output", "cases", "metric", "max err", "tol",
                "at shape");
    for (const auto& [key, w] : worst_errors())
      std::printf("%-22s %-12s %6d %-9s %12.3e %10.1e  %s\n", key.first.c_str(), key.second.c_str(), w.cases,
                  w.metric.c_str(), w.err, w.tol, w.shape.c_str());
    std::fflush(stdout);
  }
};
[[maybe_unused]] const auto* const kSummary = ::testing::AddGlobalTestEnvironment(new SummaryPrinter);

const std::vector<OpCase>& cases() {
  static const std::vector<OpCase> c = all_cases();
  return c;
}

class BackendOps : public ::testing::TestWithParam<size_t> {};

TEST_P(BackendOps, MatchesCpu) {
  BATON_REQUIRE_GPU();
  const OpCase& c = cases()[GetParam()];
  SCOPED_TRACE(c.op + " [" + c.shape + "]");
  // Fresh inputs per case, reproducible from the case's name.
  std::mt19937 rng(static_cast<uint32_t>(std::hash<std::string>{}(c.op + "|" + c.shape)));
  const std::vector<Check> checks = c.run(rng);
  ASSERT_FALSE(checks.empty()) << c.op << " [" << c.shape << "]: compared nothing";
  for (const Check& k : checks) {
    // One line per output as it is measured: a run that dies later still shows it.
    std::printf("  %s [%s] %s: %s %.3e (tol %.1e)\n", c.op.c_str(), c.shape.c_str(), k.output.c_str(), k.metric.c_str(),
                k.err, k.tol);
    EXPECT_LE(k.err, k.tol) << c.op << " [" << c.shape << "] " << k.output << ": " << k.metric << " " << k.err
                            << " > tol " << k.tol;
    Worst& w = worst_errors()[{c.op, k.output}];
    ++w.cases;
    if (k.err >= w.err || w.metric.empty()) {
      w.err = k.err;
      w.shape = c.shape;
    }
    w.tol = k.tol;
    w.metric = k.metric;
  }
}

std::string case_name(const ::testing::TestParamInfo<size_t>& info) {
  const OpCase& c = cases()[info.param];
  std::string s = c.op + "_" + c.shape;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s + "_" + std::to_string(info.param);
}

INSTANTIATE_TEST_SUITE_P(Grid, BackendOps, ::testing::Range<size_t>(0, cases().size()), case_name);

// Every case names a distinct (op, shape): a failure points at one.
TEST(BackendOpsList, CasesAreDistinctAndCoverEveryOp) {
  std::map<std::string, int> per_op;
  std::map<std::string, int> seen;
  for (const OpCase& c : cases()) {
    ++per_op[c.op];
    EXPECT_EQ(++seen[c.op + "|" + c.shape], 1) << "duplicate case " << c.op << " [" << c.shape << "]";
  }
  for (const char* op : {"attention_prefill",
                         "attention_decode",
                         "embedding",
                         "add_rmsnorm",
                         "silu_mul",
                         "fill_convert",
                         "qkv_rope_cache",
                         "gemm",
                         "gemv",
                         "gemv_silu_mul",
                         "gemv_norm_in",
                         "gemv_residual_add",
                         "moe_norm_router_route",
                         "gemm_row_invariant",
                         "gemm_buckets",
                         "moe_topk",
                         "moe_align",
                         "moe_route",
                         "grouped_gemm",
                         "grouped_gemm_wgmma",
                         "moe_experts",
                         "moe_skinny",
                         "sample",
                         "mla_attention_prefill",
                         "mla_attention_decode",
                         "mla_prepare",
                         "mla_q_latent",
                         "mla_unabsorb",
                         "mla_split_uk",
                         "moe_grouped_topk",
                         "mla_expanded_prefill"})
    EXPECT_GT(per_op[op], 0) << op << " has no case";
}

// The bucket arithmetic behind gemm_buckets (no GPU needed).
TEST(BackendOpsList, GemmBucketsRoundUpByAtMostAnEighth) {
  EXPECT_EQ(gemm_m_bucket(1), 1);
  EXPECT_EQ(gemm_m_bucket(64), 64);
  EXPECT_EQ(gemm_m_bucket(65), 72);      // 64 <= m < 128: steps of 8
  EXPECT_EQ(gemm_m_bucket(1025), 1152);  // 1024 <= m < 2048: steps of 128
  EXPECT_EQ(gemm_m_bucket(8192), 8192);
  EXPECT_EQ(gemm_m_bucket(8193), 9216);
  for (int m = 65; m < 20000; m += 97) {
    const int b = gemm_m_bucket(m);
    EXPECT_GE(b, m);
    EXPECT_LE(b - m, m / 8) << m;
  }
}

}  // namespace
}  // namespace baton::cuda::ops

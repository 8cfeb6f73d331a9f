#include "tools/gpu_profile/profile_report.h"

#include <fmt/format.h>

namespace baton::cuda {
namespace {

// Issue 18's FP8 targets: a model profiled beside its "@fp8-block" form in
// the same run: decode batch 1 step <= 0.6x the bf16 step, prefill of 8192
// tokens >= 1.4x the bf16 tokens/s.
Json fp8_targets(const Json& r) {
  Json out = Json::array();
  auto find = [&](const std::string& name) -> const Json* {
    for (const Json& m : r["models"])
      if (m["model"] == name) return &m;
    return nullptr;
  };
  auto row_value = [](const Json& rows, const char* key, int at, const char* field) {
    for (const Json& d : rows)
      if (d[key] == at && d.contains(field)) return d[field].get<double>();
    return 0.0;
  };
  for (const Json& m : r["models"]) {
    const std::string name = m["model"].get<std::string>();
    const size_t at = name.find("@fp8-");
    const Json* base = at == std::string::npos ? nullptr : find(name.substr(0, at));
    if (base == nullptr) continue;
    const double step8 = row_value(m["decode"], "batch", 1, "step_ms"),
                 step16 = row_value((*base)["decode"], "batch", 1, "step_ms");
    if (step8 > 0 && step16 > 0) {
      const double v = step8 / step16;
      out.push_back({{"name", name + " decode batch 1 step / bf16 step (at most)"},
                     {"value", v},
                     {"target", 0.6},
                     {"met", v <= 0.6},
                     {"at_most", true},
                     {"issue", 18}});
    }
    const double tps8 = row_value(m["prefill"], "tokens", 8192, "tokens_per_s"),
                 tps16 = row_value((*base)["prefill"], "tokens", 8192, "tokens_per_s");
    if (tps8 > 0 && tps16 > 0) {
      const double v = tps8 / tps16;
      out.push_back({{"name", name + " prefill 8192 tokens/s / bf16 tokens/s"},
                     {"value", v},
                     {"target", 1.4},
                     {"met", v >= 1.4},
                     {"issue", 18}});
    }
  }
  return out;
}

}  // namespace

std::string markdown(const Json& r) {
  std::string s;
  s += fmt::format("# GPU performance: {}\n\n", r["device"].get<std::string>());
  s += "Measured in one run of `baton profile` (`baton_gpu_profile`)";
  if (r.contains("measured_at")) s += fmt::format(", {}", r["measured_at"].get<std::string>());
  if (r.contains("cuda_driver"))
    s += fmt::format(" (CUDA driver API {}, runtime {})", r["cuda_driver"].get<std::string>(),
                     r.value("cuda_runtime", std::string("?")));
  s += "; random weights made on the GPU (bf16; FP8 e4m3 with 128x128 block scales for a model named @fp8-block). "
       "Every ratio is against ceilings measured in the same run.\n\n";
  if (r.contains("targets") && !r["targets"].empty()) {
    s += "Targets:\n\n| target | value | goal | met | issue |\n|---|---|---|---|---|\n";
    for (const Json& t : r["targets"]) {
      const std::string name = t["name"].get<std::string>();
      const std::string issue = t.contains("issue") ? std::to_string(t["issue"].get<int>()) : std::string();
      if (name.find("/ bf16") != std::string::npos) {  // an FP8 / bf16 ratio
        s += fmt::format("| {} | {:.2f}x | {} {:.1f}x | {} | {} |\n", name, t["value"].get<double>(),
                         t.value("at_most", false) ? "<=" : ">=", t["target"].get<double>(),
                         t["met"].get<bool>() ? "yes" : "no", issue);
        continue;
      }
      s += fmt::format("| {} | {:.1f}% | {:.0f}% | {} | {} |\n", name, 100 * t["value"].get<double>(),
                       100 * t["target"].get<double>(), t["met"].get<bool>() ? "yes" : "no", issue);
    }
    for (const Json& t : r["targets"])
      if (t.contains("limited_by"))
        s += fmt::format("\n{}: short; {}.\n", t["name"].get<std::string>(), t["limited_by"].get<std::string>());
    s += "\n";
  }
  s += fmt::format(
      "Ceilings measured in the same run: device copy {:.0f} GB/s (read + write), cuBLASLt bf16 "
      "8192^3 GEMM {:.0f} TFLOP/s, FP8 (W8A8, 128x128 weight blocks, activations quantised per 1x128 group) "
      "8192^3 GEMM {:.0f} TFLOP/s, pinned host->device {:.1f} GB/s.\n\n",
      r["ceilings"]["copy_gbps"].get<double>(), r["ceilings"]["gemm_tflops"].get<double>(),
      r["ceilings"].value("fp8_gemm_tflops", 0.0), r["ceilings"]["h2d_pinned_gbps"].get<double>());
  s += "How the figures are made (src/tools/gpu_profile). A step time is the median wall time of one engine step "
       "(host packing, upload, the CUDA graph's replay for decode, sampling on the GPU, the sampled ids' download), "
       "after untimed steps (a decode row's last at least 250 ms: the card's clock settles after a model is made); "
       "\"GPU ms\" is the same step timed on the GPU alone. Bandwidth utilisation: (weight bytes read + KV bytes "
       "read) / step time / the device-copy bandwidth (read + write). The weights read are every weight but the "
       "embedding table (the LM head included; an FP8 model's dense projections at 1 byte), and for an MoE model the "
       "experts the batch is expected to hit when each token picks its top-k at random. FLOP utilisation: 2 x "
       "tokens x linear parameters (the LM head at the sampled rows) + 4 x heads x head_dim x keys attended "
       "(causal for prefill), over the run's GEMM rate (the FP8 rate for an FP8 model's prefill).\n\n";
  const int cards = r.value("tensor_parallel_size", 1);
  if (cards > 1)
    s += fmt::format("Tensor parallel size {}: one rank per GPU over NCCL; utilisation is against {} cards.\n\n", cards,
                     cards);
  if (r.contains("all_reduce")) {
    s += fmt::format(
        "NCCL all-reduce (bf16, sum) over {} rank(s), same run; bus bandwidth = bytes x 2(N-1)/N / time (0 at one "
        "rank):\n\n| bytes | us | algbw GB/s | busbw GB/s |\n|---|---|---|---|\n",
        cards);
    for (const Json& a : r["all_reduce"])
      s += fmt::format("| {:.0f} | {:.1f} | {:.1f} | {:.1f} |\n", a["bytes"].get<double>(), a["us"].get<double>(),
                       a["algbw_gbps"].get<double>(), a["busbw_gbps"].get<double>());
    s += "\n";
  }
  for (const Json& m : r["models"]) {
    s += fmt::format("## {}\n\n", m["model"].get<std::string>());
    if (m.contains("error")) {
      s += fmt::format("Not measured: {}\n\n", m["error"].get<std::string>());
      continue;
    }
    if (m.contains("kv_bytes_per_token"))
      s += fmt::format("KV cache: {:.0f} bytes per token (all layers, bf16).\n\n",
                       m["kv_bytes_per_token"].get<double>());
    s += fmt::format(
        "Decode (context {} tokens per sequence; bytes = weights read, the experts the batch is expected to hit, + KV "
        "read):\n\n",
        m["decode"].empty() ? 0 : m["decode"][0]["context"].get<int>());
    s += "| batch | step ms | GPU ms | tokens/s | GB/s | bandwidth util | FLOP util | attention us/layer |\n"
         "|---|---|---|---|---|---|---|---|\n";
    auto optional = [](const Json& d, const char* key, const char* format) {
      return d.contains(key) ? fmt::format(fmt::runtime(format), d[key].get<double>()) : std::string();
    };
    for (const Json& d : m["decode"]) {
      if (d.contains("skipped")) {
        s += fmt::format("| {} | skipped: {} | | | | | | |\n", d["batch"].get<int>(), d["skipped"].get<std::string>());
        continue;
      }
      s += fmt::format("| {} | {:.3f} | {} | {:.0f} | {:.0f} | {:.1f}% | {:.1f}% | {} |\n", d["batch"].get<int>(),
                       d["step_ms"].get<double>(), optional(d, "gpu_ms", "{:.3f}"), d["tokens_per_s"].get<double>(),
                       d["achieved_gbps"].get<double>(), 100 * d["bandwidth_utilization"].get<double>(),
                       100 * d["flop_utilization"].get<double>(), optional(d, "attention_us_per_layer", "{:.1f}"));
    }
    for (const Json& d : m["decode"]) {
      if (!d.contains("kernels")) continue;
      s += fmt::format(
          "\nBatch {}, kernel by kernel inside the step's graph ({:.3f} ms a replay, the GPU alone): each kernel's "
          "launches replaced by an empty wait for the kernel before, the time saved is its in-step cost.\n\n"
          "| kernel | launches a step | in-step cost, us | share of the replay |\n|---|---|---|---|\n",
          d["batch"].get<int>(), d["graph_ms"].get<double>());
      const double graph_us = d["graph_ms"].get<double>() * 1e3;
      for (const Json& k : d["kernels"])
        s += fmt::format("| `{}` | {} | {:.1f} | {:.1f}% |\n", k["name"].get<std::string>(), k["launches"].get<int>(),
                         k["cost_us"].get<double>(), graph_us > 0 ? 100 * k["cost_us"].get<double>() / graph_us : 0.0);
    }
    s += "\nPrefill (one sequence; FLOPs = linear + causal attention):\n\n";
    s += "| tokens | ms | tokens/s | TFLOP/s | FLOP util | of the GEMM rate right after |\n|---|---|---|---|---|---|\n";
    for (const Json& p : m["prefill"]) {
      if (p.contains("skipped")) {
        s += fmt::format("| {} | skipped | | | | |\n", p["tokens"].get<int>());
        continue;
      }
      const std::string adjacent = p.contains("flop_utilization_adjacent")
                                       ? fmt::format("{:.1f}% of {:.0f} TFLOP/s",
                                                     100 * p["flop_utilization_adjacent"].get<double>(),
                                                     p["gemm_tflops_adjacent"].get<double>())
                                       : std::string();
      s += fmt::format("| {} | {:.2f} | {:.0f} | {:.1f} | {:.1f}% | {} |\n", p["tokens"].get<int>(),
                       p["time_ms"].get<double>(), p["tokens_per_s"].get<double>(), p["achieved_tflops"].get<double>(),
                       100 * p["flop_utilization"].get<double>(), adjacent);
    }
    s += "\n";
  }
  return s;
}

// The issues' targets, met or not, and what limits a miss: issue 18's for
// Llama-3.1-8B and Qwen3-30B-A3B in bf16 (decode batch 1 and 64 at context
// 1024, prefill 8K) and for the FP8 form beside its bf16 one (fp8_targets);
// issue 17's for DeepSeek-V3's reduced preset (decode batch 64 at 4K context,
// prefill 8K).
Json targets(const Json& r) {
  struct Goal {
    double decode1, decode64, prefill;  // 0: none
    int issue;
  };
  Json out = fp8_targets(r);
  for (const Json& m : r["models"]) {
    const std::string name = m["model"].get<std::string>();
    Goal goal;
    if (name == "llama3.1-8b") goal = {0.85, 0.80, 0.71, 18};
    else if (name == "qwen3-30b-a3b") goal = {0.70, 0.75, 0.55, 18};
    else if (name.rfind("deepseek-v3", 0) == 0) goal = {0.0, 0.70, 0.45, 17};
    else continue;
    auto decode_target = [&](int batch, double target) {
      if (target <= 0.0) return;
      for (const Json& d : m["decode"]) {
        if (d["batch"] != batch || !d.contains("bandwidth_utilization")) continue;
        const double v = d["bandwidth_utilization"].get<double>();
        Json t = {{"name", fmt::format("{} decode batch {} (context {}) bandwidth utilisation", name, batch,
                                       d["context"].get<int>())},
                  {"value", v},
                  {"target", target},
                  {"met", v >= target},
                  {"issue", goal.issue}};
        if (v < target) {
          std::string why = fmt::format("step {:.3f} ms: weights and KV at {:.0f} GB/s plus fixed per-step costs",
                                        d["step_ms"].get<double>(), d["achieved_gbps"].get<double>());
          if (d.contains("attention_us_per_layer"))
            why += fmt::format("; attention alone {:.0f} us/layer ({:.0f} GB/s of KV)",
                               d["attention_us_per_layer"].get<double>(), d["attention_gbps"].get<double>());
          t["limited_by"] = why;
        }
        out.push_back(t);
      }
    };
    decode_target(1, goal.decode1);
    decode_target(64, goal.decode64);
    for (const Json& p : m["prefill"]) {
      if (p["tokens"] != 8192 || !p.contains("flop_utilization")) continue;
      const double v = p["flop_utilization"].get<double>();
      Json t = {{"name", name + " prefill 8192 tokens FLOP utilisation"},
                {"value", v},
                {"target", goal.prefill},
                {"met", v >= goal.prefill},
                {"issue", goal.issue}};
      // Against the rate measured right after the row (profile_ceilings.h), beside the run's.
      if (p.contains("flop_utilization_adjacent")) t["value_adjacent"] = p["flop_utilization_adjacent"];
      if (v < goal.prefill && p.contains("attention_ms_per_layer")) {
        const double att_ms = p["attention_ms_per_layer"].get<double>();
        const double total = p["time_ms"].get<double>();
        const int layers = m["num_layers"].get<int>();
        const double att_all = att_ms * layers;
        t["limited_by"] = fmt::format(
            "attention at {:.0f} TFLOP/s of the model's FLOPs takes {:.0f} of {:.0f} ms; the rest (GEMMs, grouped "
            "expert GEMMs and elementwise kernels) runs at {:.0f} TFLOP/s",
            p["attention_tflops"].get<double>(), att_all, total,
            p["linear_flops"].get<double>() / ((total - att_all) * 1e-3) / 1e12);
        if (p.contains("attention_flops_executed") && !p.contains("mla_form"))
          t["limited_by"] = t["limited_by"].get<std::string>() +
                            fmt::format(
                                " (MLA's absorbed form executes {:.1f}x the model's attention FLOPs)",
                                p["attention_flops_executed"].get<double>() / p["attention_flops"].get<double>());
      }
      out.push_back(t);
    }
  }
  return out;
}

}  // namespace baton::cuda

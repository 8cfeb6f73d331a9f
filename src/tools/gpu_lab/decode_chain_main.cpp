// baton_gpu_lab_decode_chain: the decode-chain lab (decode_chain.h) as a small
// binary to carry to a GPU host. Prints one row a form: the step's time, the
// weights' GB/s, their share of the copy bandwidth, and whether the outputs
// equal the first form's bit for bit.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "tools/gpu_lab/decode_chain.h"

int main(int argc, char** argv) {
  baton::cuda::ChainOptions opt;
  CLI::App app{"The decode-chain lab: a graph of one kernel a linear against one persistent kernel a step"};
  app.add_option("--models", opt.models, "chains: llama (Llama-3.1-8B), qwen3moe (Qwen3-30B-A3B, 8 experts)")
      ->delimiter(',');
  app.add_option("--dtypes", opt.dtypes, "weights: bf16, e4m3")->delimiter(',');
  app.add_option("--prefetch", opt.prefetch_bytes, "the persistent forms' L2 prefetch, bytes a row")
      ->delimiter(',')
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--blocks-per-sm", opt.blocks_per_sm, "the persistent grid (0: as many as fit)")
      ->delimiter(',')
      ->check(CLI::Range(0, 64));
  app.add_option("--reps", opt.reps, "timed runs a form (the median is printed)")->check(CLI::Range(1, 10000));
  CLI11_PARSE(app, argc, argv);
  auto report = baton::cuda::run_decode_chain(opt);
  if (!report.is_ok()) {
    std::fprintf(stderr, "decode chain: %s\n", report.status().to_string().c_str());
    return 1;
  }
  std::printf("device: %s, copy %.0f GB/s (2 GiB, read + write)\n", report->device.c_str(), report->copy_gbps);
  std::printf("%-9s %-5s %-22s %6s %5s %5s %9s %8s %7s  %s\n", "model", "dtype", "form", "stages", "grid", "regs",
              "step us", "GB/s", "of copy", "outputs");
  for (const auto& r : report->rows)
    std::printf("%-9s %-5s %-22s %6d %5d %5d %9.1f %8.0f %6.1f%%  %s\n", r.model.c_str(), r.dtype.c_str(),
                r.form.c_str(), r.stages, r.grid, r.registers, r.step_us, r.gbps, 100.0 * r.of_copy, r.check.c_str());
  return 0;
}

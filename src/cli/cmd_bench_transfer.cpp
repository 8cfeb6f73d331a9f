// `baton bench-transfer`: moves one request's KV (default: the
// Llama-3.1-8B shape, 32 layers x 8 KV heads x head_dim 128, bf16, block 16)
// at several prompt lengths over each transport, against ceilings measured
// in the same run (memcpy, loopback TCP; with --device cuda, KV in GPU memory
// on both ends: cudaMemcpyPeer for cuda_ipc, loopback TCP for tcp). The
// benches themselves live in the tools layer (src/tools/transfer_bench).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "tools/transfer_bench/cpu_transfer_bench.h"
#ifdef BATON_HAVE_KV_CUDA
#include "tools/transfer_bench/cuda/cuda_transfer_bench.h"
#endif

namespace {

using namespace baton;

struct Options {
  CpuTransferBenchOptions cpu;
  int num_layers = 32;
  int num_kv_heads = 8;
  int head_dim = 128;
  int block_size = 16;
  std::string dtype = "bf16";
  std::string device = "cpu";
};

KvRegionDesc region_shape(const Options& o, DType dtype) {
  KvRegionDesc d;
  d.layout.dtype = dtype;
  d.layout.num_layers = o.num_layers;
  d.layout.num_kv_heads = o.num_kv_heads;
  d.layout.head_dim = o.head_dim;
  d.layout.block_size = o.block_size;
  return d;
}

int run(Options& o, bool transports_given) {
  // fp8 (= fp8_e4m3): the blocks of --kv-cache-dtype fp8, a byte a value.
  auto dtype = o.dtype == "fp8" || o.dtype == "fp8_e4m3" ? Result<DType>(DType::kF8E4M3) : parse_dtype(o.dtype);
  if (!dtype.is_ok()) {
    std::cerr << "bench-transfer: " << dtype.status().message() << "\n";
    return 2;
  }
  for (int t : o.cpu.tokens) {
    if (t <= 0) {
      std::cerr << "bench-transfer: --tokens must be positive, got " << t << "\n";
      return 2;
    }
  }
  o.cpu.region = region_shape(o, *dtype);
  if (o.device == "cuda") {
#ifdef BATON_HAVE_KV_CUDA
    CudaTransferBenchOptions co;
    co.tokens = o.cpu.tokens;
    co.repeats = o.cpu.repeats;
    co.region = o.cpu.region;
    co.json_path = o.cpu.json_path;
    co.tcp_streams = o.cpu.tcp_streams;
    if (transports_given) co.transports = o.cpu.transports;
    return run_cuda_transfer_bench(co);
#else
    std::cerr << "bench-transfer: --device cuda needs a CUDA build of baton\n";
    return 2;
#endif
  }
  return run_cpu_transfer_bench(o.cpu);
}

baton::cli::RunFn setup(CLI::App& sub) {
  auto o = std::make_shared<Options>();
  sub.add_option("--tokens", o->cpu.tokens, "Prompt lengths to move (tokens)")->delimiter(',');
  CLI::Option* transports_opt =
      sub.add_option("--transports", o->cpu.transports,
                     "Transports: local,shm,tcp,ucx (cpu, the default all four); cuda_ipc,tcp,ucx (cuda, the default "
                     "all three); ucx uses the transports UCX_TLS allows")
          ->delimiter(',');
  sub.add_option("--repeats", o->cpu.repeats, "Timed transfers per case (after one verified warm-up)")
      ->check(CLI::Range(1, 1000));
  sub.add_option("--layers", o->num_layers, "KV layers")->check(CLI::Range(1, 1024));
  sub.add_option("--kv-heads", o->num_kv_heads, "KV heads")->check(CLI::Range(1, 1024));
  sub.add_option("--head-dim", o->head_dim, "Head dimension")->check(CLI::Range(1, 4096));
  sub.add_option("--block-size", o->block_size, "Tokens per KV block")->check(CLI::Range(1, 4096));
  sub.add_option("--dtype", o->dtype, "KV dtype: bf16, f16, f32, fp8 (--kv-cache-dtype fp8's e4m3: half bf16's bytes)");
  sub.add_option(
         "--device", o->device,
         "cpu (host KV: local, shm, tcp, ucx) or cuda (GPU KV on both ends: cuda_ipc between 2 GPUs or within one, tcp "
         "staged through pinned host memory, ucx, on 2 GPUs or one)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub.add_flag("--checksum", o->cpu.checksum_every_read,
               "Verify xxHash64 per block on every timed read (the warm-up always does)");
  sub.add_option("--tcp-streams", o->cpu.tcp_streams,
                 "tcp: parallel connections one large read is split over (default the transport's)")
      ->check(CLI::Range(1, 64));
  sub.add_option("--json", o->cpu.json_path, "Also write the results as JSON here");
  return [o, transports_opt]() -> int { return run(*o, transports_opt->count() > 0); };
}

}  // namespace

baton::cli::CommandSpec baton::cli::bench_transfer_command() {
  return {"bench-transfer", "Benchmark moving one request's KV over each transport", &setup};
}

// What the KV port's trust boundary costs per request (issue 14): signing and
// checking the kv_transfer_params of an 8K-token prompt (512 blocks of 16),
// the lease token, and a new connection's handshake with and without a
// secret. A PD request pays the signing once, the check twice (on arrival
// and before the pull), and a handshake only when the decode opens a new
// connection to the agent (they are pooled).
#include <benchmark/benchmark.h>

#include <vector>

#include "kv_transfer/kv_agent.h"
#include "kv_transfer/kv_handshake.h"
#include "kv_transfer/transfer_params.h"

namespace baton {
namespace {

std::shared_ptr<const KvSecret> bench_secret() {
  static auto s = KvSecret::from_bytes("benchmark-kv-secret-0123456789abcdef", "bench").value();
  return s;
}

TransferParams params_8k() {
  TransferParams p;
  p.engine_id = "prefill-127.0.0.1-4242-0badcafe";
  p.request_id = "cmpl-0123456789abcdef";
  for (int i = 0; i < 512; ++i) p.block_ids.push_back(1000 + i);
  p.host = "127.0.0.1";
  p.port = 40000;
  p.num_tokens = 8192;
  p.block_size = 16;
  p.lease_expires_ms = 1767225600000;
  p.lease_ms = 30000;
  p.transport = "tcp";
  p.lease_token = random_hex(16).value();
  return p;
}

void BM_LeaseToken(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(random_hex(16));
}
BENCHMARK(BM_LeaseToken)->Unit(benchmark::kMicrosecond);

// Prefill: build, sign and serialise the params.
void BM_SignParams8k(benchmark::State& state) {
  const TransferParams p = params_8k();
  for (auto _ : state) {
    TransferParams q = p;
    q.sign(*bench_secret());
    benchmark::DoNotOptimize(q.to_json());
  }
}
BENCHMARK(BM_SignParams8k)->Unit(benchmark::kMicrosecond);

// Decode: parse (type checks) and verify, as on arrival and again before the pull.
void BM_CheckParams8k(benchmark::State& state) {
  TransferParams p = params_8k();
  p.sign(*bench_secret());
  const Json j = p.to_json();
  for (auto _ : state) {
    auto parsed = TransferParams::parse(j);
    benchmark::DoNotOptimize(parsed->verify(bench_secret().get()));
  }
}
BENCHMARK(BM_CheckParams8k)->Unit(benchmark::kMicrosecond);

// A new connection to the agent: connect, hello, (auth), over loopback.
void BM_ConnectHandshake(benchmark::State& state) {
  const bool with_secret = state.range(0) != 0;
  std::vector<uint8_t> memory(64 * 1024);
  KvRegionDesc region;
  region.base = memory.data();
  region.layout.num_blocks = 64;
  region.layout.dtype = DType::kF16;
  region.layout.num_layers = 2;
  region.layout.num_kv_heads = 2;
  region.layout.head_dim = 8;
  region.layout.block_size = 4;
  KvAgentOptions o;
  if (with_secret) o.secret = bench_secret();
  auto agent = KvAgent::start(region, PeerDescriptor::from_region(region, "bench", "m"), nullptr, o);
  if (!agent.is_ok()) {
    state.SkipWithError(agent.status().to_string().c_str());
    return;
  }
  const int port = (*agent)->port();
  for (auto _ : state) {
    const ReadContext ctx{deadline_after_ms(5000), nullptr};
    auto conn = Connection::connect("127.0.0.1", port, ctx);
    if (!conn.is_ok()) {
      state.SkipWithError(conn.status().to_string().c_str());
      break;
    }
    auto hs = reader_handshake(**conn, with_secret ? bench_secret().get() : nullptr, ctx);
    if (!hs.is_ok()) {
      state.SkipWithError(hs.status().to_string().c_str());
      break;
    }
  }
  state.SetLabel(with_secret ? "hmac-sha256" : "none");
}
BENCHMARK(BM_ConnectHandshake)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace baton

BENCHMARK_MAIN();

#include "tools/transfer_bench/cpu_transfer_bench.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/json.h"
#include "common/log.h"
#include "kv_transfer/block_runs.h"
#include "kv_transfer/shm_buffer.h"
#include "kv_transfer/transfer_engine.h"
#include "kv_transfer/transport_registry.h"
#include "tools/transfer_bench/bandwidth.h"
#include "tools/transfer_bench/bench_util.h"

namespace baton {

namespace {

struct Row {
  std::string transport;
  int tcp_streams = 0;  // tcp only
  int tokens = 0;
  int64_t num_blocks = 0;
  size_t num_runs = 0;
  uint64_t num_bytes = 0;
  double best_s = 0;
  double median_s = 0;
  std::string ceiling_name;
  double ceiling_gbps = 0;
  double gbps() const { return static_cast<double>(num_bytes) / best_s / 1e9; }
  double median_gbps() const { return static_cast<double>(num_bytes) / median_s / 1e9; }
};

KvRegionDesc shape(const CpuTransferBenchOptions& o, int64_t num_blocks) {
  KvRegionDesc d = o.region;
  d.layout.num_blocks = static_cast<int>(num_blocks);
  return d;
}

Result<std::unique_ptr<TransferEngine>> make_engine(const std::string& transport, const std::string& id,
                                                    int tcp_streams) {
  std::unique_ptr<Transport> t;
  if (transport == "tcp") {
    TcpTransportOptions topts;
    topts.num_streams = tcp_streams;
    t = std::make_unique<TcpTransport>(topts);
  } else {
    BATON_ASSIGN_OR_RETURN(t, make_transport(transport));
  }
  TransferEngineOptions opts;
  opts.engine_id = id;
  opts.default_timeout_ms = 120000;
  opts.num_workers = 1;
  opts.agent.io_timeout_ms = 120000;
  return TransferEngine::create(std::move(t), opts);
}

// The serving side in a child process: allocates the region in shared
// memory, fills it, starts the agent, reports the port, waits to be told to
// exit. Never returns.
[[noreturn]] void child_serve(const std::string& transport, const KvRegionDesc& s, int port_fd, int stop_fd) {
  int port = -1;
  auto buf = SharedMemoryBuffer::create(SharedMemoryBuffer::unique_name("bench"), s.total_bytes());
  std::unique_ptr<TransferEngine> engine;
  if (buf.is_ok()) {
    KvRegionDesc region = s;
    region.base = (*buf)->data();
    region.shm_name = (*buf)->name();
    fill_pattern(region.base, region.total_bytes(), 42);
    auto e = make_engine(transport, "bench-prefill", 1);  // the serving side reads nothing
    if (e.is_ok() && (*e)->register_memory(region).is_ok() && (*e)->start_agent(nullptr).is_ok()) {
      port = (*e)->agent_port();
      engine = std::move(e).value();
    }
  }
  if (port < 0) BATON_LOG_ERROR("bench-transfer: the serving child could not start");
  ssize_t w = ::write(port_fd, &port, sizeof(port));
  (void)w;
  char c;
  while (::read(stop_fd, &c, 1) > 0) {
  }
  engine.reset();
  buf = Status(StatusCode::kAborted, "done");  // unmaps and unlinks
  ::_exit(0);
}

// `ceiling_gbps()` measures the row's ceiling once; it is called before
// every timed transfer, so that under a varying load both see the same
// conditions (best of each is reported).
Result<Row> bench_one(const CpuTransferBenchOptions& o, const std::string& transport, int tokens,
                      const std::function<Result<double>()>& ceiling_gbps) {
  const int64_t n = (tokens + o.region.layout.block_size - 1) / o.region.layout.block_size;
  const KvRegionDesc s = shape(o, n);
  Row row;
  row.transport = transport;
  if (transport == "tcp") row.tcp_streams = o.tcp_streams;
  row.tokens = tokens;
  row.num_blocks = n;
  row.num_bytes = s.total_bytes();

  std::vector<uint8_t> src_mem;
  std::unique_ptr<TransferEngine> prefill;
  std::unique_ptr<ForkedServer> child;  // the serving side of shm and tcp
  std::string host = "127.0.0.1";
  int port = 0;
  if (transport == "local") {
    src_mem.resize(s.total_bytes());
    KvRegionDesc src = s;
    src.base = src_mem.data();
    fill_pattern(src.base, src.total_bytes(), 42);
    BATON_ASSIGN_OR_RETURN(prefill, make_engine(transport, "bench-prefill", o.tcp_streams));
    BATON_RETURN_IF_ERROR(prefill->register_memory(src));
    BATON_RETURN_IF_ERROR(prefill->start_agent(nullptr));
    port = prefill->agent_port();
  } else {
    BATON_ASSIGN_OR_RETURN(
        child,
        fork_server([&](int port_fd, int stop_fd) { child_serve(transport, s, port_fd, stop_fd); }, {}, transport));
    port = child->port;
  }

  std::vector<uint8_t> dst_mem(s.total_bytes(), 0);  // touched: pages faulted in
  KvRegionDesc dst = s;
  dst.base = dst_mem.data();
  BATON_ASSIGN_OR_RETURN(auto decode, make_engine(transport, "bench-decode", o.tcp_streams));
  BATON_RETURN_IF_ERROR(decode->register_memory(dst));
  BATON_ASSIGN_OR_RETURN(auto peer, decode->connect_peer(host, port));
  const std::vector<int64_t> remote = scattered_block_ids(n, 1);
  const std::vector<int64_t> local = scattered_block_ids(n, 2);
  BATON_ASSIGN_OR_RETURN(auto runs, coalesce_block_runs(remote, local, n, n));
  row.num_runs = runs.size();

  // Warm-up, verified end to end with per-block checksums.
  {
    ReadOptions warm;
    warm.request_id = "warmup";
    warm.checksum = true;
    BATON_ASSIGN_OR_RETURN(auto h, decode->read_blocks(peer.engine_id, remote, local, warm));
    BATON_RETURN_IF_ERROR(h->wait(300000));
  }
  std::vector<double> times;
  for (int r = 0; r < std::max(1, o.repeats); ++r) {
    BATON_ASSIGN_OR_RETURN(double ceiling, ceiling_gbps());
    row.ceiling_gbps = std::max(row.ceiling_gbps, ceiling);
    ReadOptions timed;
    timed.request_id = fmt::format("r{}", r);
    timed.checksum = o.checksum_every_read;
    BATON_ASSIGN_OR_RETURN(auto h, decode->read_blocks(peer.engine_id, remote, local, timed));
    BATON_RETURN_IF_ERROR(h->wait(300000));
    times.push_back(h->elapsed_s());
  }
  std::sort(times.begin(), times.end());
  row.best_s = times.front();
  row.median_s = times[times.size() / 2];
  BATON_RETURN_IF_ERROR(decode->notify_done(peer.engine_id, "bench"));
  return row;
}

Json row_json(const Row& r) {
  Json j{{"transport", r.transport},       {"tokens", r.tokens},
         {"num_blocks", r.num_blocks},     {"num_runs", r.num_runs},
         {"bytes", r.num_bytes},           {"best_ms", r.best_s * 1e3},
         {"median_ms", r.median_s * 1e3},  {"gbps", r.gbps()},
         {"median_gbps", r.median_gbps()}, {"ceiling", r.ceiling_name},
         {"ceiling_gbps", r.ceiling_gbps}, {"pct_of_ceiling", 100.0 * r.gbps() / r.ceiling_gbps}};
  if (r.tcp_streams > 0) j["tcp_streams"] = r.tcp_streams;
  return j;
}

void print_row(const Row& r) {
  std::cout << fmt::format(
      "{:<9} {:>6} {:>6} {:>5} {:>9.1f} {:>9.2f} {:>9.2f} {:>8.2f} {:>8.2f} {:>8.2f}  {:>5.1f}% of {}\n",
      r.tcp_streams > 0 ? fmt::format("{}x{}", r.transport, r.tcp_streams) : r.transport, r.tokens, r.num_blocks,
      r.num_runs, static_cast<double>(r.num_bytes) / (1 << 20), r.best_s * 1e3, r.median_s * 1e3, r.gbps(),
      r.median_gbps(), r.ceiling_gbps, 100.0 * r.gbps() / r.ceiling_gbps, r.ceiling_name);
}

}  // namespace

int run_cpu_transfer_bench(const CpuTransferBenchOptions& o) {
  const KvRegionDesc& r = o.region;
  for (const auto& t : o.transports) {
    if (t != "local" && t != "shm" && t != "tcp" && t != "ucx") {
      std::cerr << "bench-transfer: unknown CPU transport '" << t << "' (local, shm, tcp, ucx)\n";
      return 2;
    }
  }
  const KvRegionDesc one = shape(o, 1);
  std::cout << fmt::format(
      "KV shape: {} layers x {} KV heads x head_dim {}, {}, block {} tokens: {} KiB/token, {} "
      "MiB/block\n",
      r.layout.num_layers, r.layout.num_kv_heads, r.layout.head_dim, dtype_name(r.layout.dtype), r.layout.block_size,
      one.block_bytes() / r.layout.block_size / 1024, static_cast<double>(one.block_bytes()) / (1 << 20));
  // The machine may be shared: each row's ceiling is measured before each of
  // its timed transfers (same size, up to 512 MiB for memcpy and 1 GiB for
  // loopback TCP), and the best of each is compared.
  std::cout << "ceilings, measured interleaved with each row's transfers: memcpy (1 thread, "
               "pre-faulted buffers), loopback TCP (as many plain socket streams at once as tcp uses, "
               "4 MiB writes)\n";
  std::cout << fmt::format(
      "tcp reads: up to {} parallel connection(s) (tcpxN), one stream for reads of at most {} "
      "MiB\n\n",
      o.tcp_streams, TcpTransportOptions{}.min_stream_bytes >> 20);
  std::cout << fmt::format("{:<9} {:>6} {:>6} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}  {}\n", "transport", "tokens",
                           "blocks", "runs", "MiB", "best_ms", "med_ms", "GB/s", "med_GB/s", "ceil_GB/s",
                           "best vs ceiling");
  Json rows = Json::array();
  for (const auto& t : o.transports) {
    for (int tokens : o.tokens) {
      const size_t bytes = static_cast<size_t>((tokens + r.layout.block_size - 1) / r.layout.block_size) *
                           one.block_bytes();
      auto ceiling = [&]() -> Result<double> {
        if (t == "tcp") {
          return measure_loopback_tcp_gbps(std::min<size_t>(bytes, 1u << 30), 4u << 20, 1, o.tcp_streams);
        }
        return measure_memcpy_gbps(std::min<size_t>(bytes, 512u << 20), 2);
      };
      auto row = bench_one(o, t, tokens, ceiling);
      if (!row.is_ok()) {
        std::cerr << fmt::format("bench-transfer: {} at {} tokens: {}\n", t, tokens, row.status().to_string());
        return 1;
      }
      row->ceiling_name = t == "tcp" ? fmt::format("loopback TCP x{}", o.tcp_streams) : "memcpy";
      print_row(*row);
      rows.push_back(row_json(*row));
    }
  }
  if (!o.json_path.empty()) {
    Json out{{"shape",
              {{"num_layers", r.layout.num_layers},
               {"num_kv_heads", r.layout.num_kv_heads},
               {"head_dim", r.layout.head_dim},
               {"block_size", r.layout.block_size},
               {"dtype", dtype_name(r.layout.dtype)},
               {"block_bytes", one.block_bytes()}}},
             {"rows", rows}};
    Status st = write_file(o.json_path, out.dump(2) + "\n");
    if (!st.is_ok()) {
      std::cerr << "bench-transfer: " << st.to_string() << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace baton

// The benchmark config the bench tests drive the sim server with: constant
// arrivals of n random 16-token prompts at `rate`, `out` tokens each.
#pragma once

#include <string>

#include "bench/bench_run.h"

namespace baton::bench::test_util {

inline BenchConfig sim_config(const std::string& url, double rate, size_t n, int64_t out) {
  BenchConfig c;
  c.workload.kind = "random";
  c.workload.input_len = {16, 16};
  c.workload.output_len = {out, out};
  c.workload.num_requests = n;
  c.workload.arrival = {ArrivalKind::kConstant, rate, 1.0, 1};
  c.workload.vocab_size = 1000;
  c.load.url = url;
  c.load.model = "sim";
  c.load.vocab_size = 1000;
  c.load.request_timeout_s = 30;
  return c;
}

}  // namespace baton::bench::test_util

// Ceilings for `baton bench-transfer`, measured on this machine in the same
// run as the transports: single-thread memcpy and a plain loopback TCP
// stream (two threads, one socket, large writes), or several at once.
#pragma once

#include <cstddef>

#include "common/status.h"

namespace baton {

// Best-of-`repeats` GB/s (1e9 bytes/s) of memcpy between two pre-faulted
// buffers of num_bytes.
double measure_memcpy_gbps(size_t num_bytes, int repeats);

// GB/s of `num_streams` TCP connections over 127.0.0.1 streaming num_bytes
// between them (near-equal shares, all at once; a writer and a reader thread
// each) in chunk_bytes writes (best of `repeats`).
Result<double> measure_loopback_tcp_gbps(size_t num_bytes, size_t chunk_bytes, int repeats, int num_streams = 1);

}  // namespace baton

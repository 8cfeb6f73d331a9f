// Collectives among the ranks of one tensor-parallel instance (docs/
// parallelism.md). Every rank calls the same collectives in the same order
// with the same counts; each call returns once every rank has made it.
// cpu/cpu_communicator.h connects ranks that are threads of one process (the
// CPU backend, tests); an NCCL one will connect GPUs.
//
// A collective that cannot complete (a rank failed, or one did not arrive
// within the communicator's timeout) returns an error on every rank that
// waits in it, and the communicator stays broken: the instance is done.
#pragma once

#include <cstdint>

#include "common/status.h"

namespace baton {

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // data[i] = the sum over ranks of their data[i], in place. Every rank gets
  // bitwise the same sums (one summation order, rank 0 first).
  virtual Status all_reduce_sum(float* data, int64_t count) = 0;
  // out[r * count + i] = rank r's in[i]; out: [world_size, count].
  virtual Status all_gather(const float* in, int64_t count, float* out) = 0;
  // Every rank's data = root's data.
  virtual Status broadcast(float* data, int64_t count, int root) = 0;

  // Called by a rank that fails between collectives: its peers' pending and
  // later collectives return `cause` instead of waiting for it.
  virtual void abort(const Status& cause) = 0;
};

}  // namespace baton

// Collectives among the CUDA backend's tensor-parallel ranks, on device
// buffers (docs/parallelism.md). The float collectives of Communicator take
// device pointers here, plus a bf16 all-reduce (the activations'), and are
// queued on the rank's stream (set_stream): a call returns once the
// collective is queued, and it completes in stream order, once every rank's
// stream has reached it. nccl_communicator.h joins GPUs through NCCL (its
// collectives can be captured into CUDA graphs); host_staged_communicator.h
// runs the CPU communicator over host copies (tests: several ranks on one GPU).
//
// A collective that cannot complete shows in health(): NCCL's asynchronous
// error, a peer's abort, or a timeout. The backend polls it while it waits
// for a step, and aborts the group when a step stalls past its deadline, so
// no rank waits forever.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backend/communicator.h"
#include "backend/cuda/kernels.h"
#include "common/status.h"

namespace baton::cuda {

class DeviceCommunicator : public Communicator {
 public:
  // data[i] = the sum over ranks of their data[i] (device memory, in place).
  virtual Status all_reduce_sum_bf16(bf16* data, int64_t count) = 0;
  // The stream the collectives are queued on: the rank's (CudaBackend sets it).
  virtual void set_stream(cudaStream_t stream) = 0;
  // Whether the collectives may be captured into a CUDA graph.
  virtual bool capturable() const = 0;
  // OK, or the error that broke the group (then every later call fails).
  virtual Status health() = 0;
  // "nccl" or "host-staged".
  virtual std::string kind() const = 0;
};

}  // namespace baton::cuda

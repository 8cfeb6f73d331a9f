#include "tools/gpu_profile/kernel_cost_batches.h"

#include <algorithm>

namespace baton::cuda {

Status check_kernel_cost_batches(const std::vector<int>& kernel_cost_batches, const std::vector<int>& decode_batches,
                                 int tensor_parallel_size) {
  if (kernel_cost_batches.empty()) return Status::ok();
  if (tensor_parallel_size > 1)
    return invalid_argument("--kernel-costs times one GPU's decode graph; --tensor-parallel-size is {}",
                            tensor_parallel_size);
  for (int batch : kernel_cost_batches)
    if (std::find(decode_batches.begin(), decode_batches.end(), batch) == decode_batches.end())
      return invalid_argument("--kernel-costs batch {} is not one of --decode-batches", batch);
  return Status::ok();
}

}  // namespace baton::cuda

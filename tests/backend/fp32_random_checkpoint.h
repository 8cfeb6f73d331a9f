// Test helper: writes a random-weight fp32 checkpoint of `config` into `dir`
// (normal(0, stddev) weights, norms 1) and opens it; null after a failed
// expectation.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "model/checkpoint.h"
#include "model/random_checkpoint.h"

namespace baton::testing {

inline std::unique_ptr<Checkpoint> write_fp32_random_checkpoint(const ModelConfig& config, const std::string& dir,
                                                                uint64_t seed, double stddev) {
  RandomCheckpointOptions options;
  options.out_dir = dir;
  options.seed = seed;
  options.dtype = DType::kF32;
  options.num_threads = 1;
  options.initializer_range = stddev;
  auto written = write_random_checkpoint(config, options);
  EXPECT_TRUE(written.is_ok()) << written.status().to_string();
  if (!written.is_ok()) return nullptr;
  auto ckpt = Checkpoint::open(dir);
  EXPECT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  return ckpt.is_ok() ? std::move(ckpt).value() : nullptr;
}

}  // namespace baton::testing

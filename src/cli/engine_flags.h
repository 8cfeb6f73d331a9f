// The engine flags every engine-starting command shares (`baton generate`,
// `baton serve`, ...). They fill instance::EngineBuildOptions; the engine
// itself is built by the instance layer (instance/engine_builder.h).
#pragma once

#include <CLI/CLI.hpp>

#include "instance/engine_builder.h"

namespace baton::cli {

using EngineFlags = instance::EngineBuildOptions;
using instance::build_engine;
using instance::build_engine_core;
using instance::LoadedCore;
using instance::LoadedEngine;

// Adds --model, --load-format, --device, --block-size, --num-kv-blocks, --kv-cache-bytes, --kv-cache-dtype,
// --max-num-batched-tokens, --max-num-seqs, --max-model-len,
// --no-prefix-caching, --seed, --num-threads, --max-waiting-requests,
// --gpu-memory-utilization, --batch-invariant, --tensor-parallel-size and
// --scripted-output.
void add_engine_flags(CLI::App& app, EngineFlags& flags);

}  // namespace baton::cli

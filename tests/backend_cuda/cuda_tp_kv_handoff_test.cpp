// PD between tensor-parallel layouts with the KV in GPU memory, on one GPU:
// a prefill instance at TP=a computes the prompts, a decode instance at TP=b
// pulls their blocks over the tcp transport (device KV staged through pinned
// host buffers) and generates the rest, as PdTransfer wires it: a side at
// TP > 1 keeps its wire-layout region in device memory (TpKvRelayout with the
// CudaDeviceCopier: one 2-D device copy per run of blocks and rank), gathered
// from its ranks (prefill) or scattered to them (decode). TP=2 -> TP=1 and
// TP=1 -> TP=2, the TP=2 ranks on the one GPU over host-staged collectives,
// on qwen3-tiny (its 2 KV heads split) and deepseek-v3-tiny (the MLA latent
// row whole on every rank). Checked: every rank of the decode holds exactly
// the bytes of its heads that the prefill's ranks computed, and the decode,
// teacher-forced by an aggregated TP=1 instance, makes the same greedy picks
// (but at bf16 near-ties) with logits within 2e-2.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/cuda_tensor_parallel.h"
#include "backend/cuda/host_staged_communicator.h"
#include "backend/fixture_models.h"
#include "backend/greedy_batch.h"
#include "backend/step_builder.h"
#include "cuda_test_util.h"
#include "greedy_picks.h"
#include "kv_transfer/cuda/cuda_device_copier.h"
#include "kv_transfer/tcp_transport.h"
#include "kv_transfer/transfer_engine.h"
#include "model/checkpoint.h"
#include "pd/tp_kv_relayout.h"

namespace baton::cuda {
namespace {

using baton::testing::Generation;
using baton::testing::TestSeq;
using namespace baton::cuda::testing;

constexpr int kBlockSize = 16, kNumBlocks = 64, kNewTokens = 8;

// One side of the handoff: its backend (TP=1 or TP=2 on GPU 0) and, as
// PdTransfer makes them, the copier, the relayout at TP > 1 and the engine.
struct Side {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<CudaDeviceCopier> copier;
  std::unique_ptr<TpKvRelayout> relayout;
  std::unique_ptr<TransferEngine> engine;
};

std::unique_ptr<Backend> make_backend(const Checkpoint& ckpt, int tp) {
  if (tp == 1) {
    auto b = CudaBackend::create(ckpt, small_backend_options(0.2));
    EXPECT_TRUE(b.is_ok()) << b.status().to_string();
    return b.is_ok() ? std::unique_ptr<Backend>(std::move(b).value()) : nullptr;
  }
  std::vector<std::unique_ptr<DeviceCommunicator>> comms;
  for (auto& c : HostStagedCommunicator::make_group(tp, std::chrono::milliseconds(5000))) comms.push_back(std::move(c));
  CudaRankMaker make_rank = [&](const CudaBackendOptions& o, const CudaTpRank& rank) {
    return CudaBackend::create(ckpt, o, rank);
  };
  auto b = make_cuda_tensor_parallel(ckpt.config(), small_backend_options(0.2), std::vector<int>(tp, 0),
                                     std::move(comms), make_rank);
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  return b.is_ok() ? std::unique_ptr<Backend>(std::move(b).value()) : nullptr;
}

void open_side(Side& side, const Checkpoint& ckpt, int tp, const std::string& id) {
  side.backend = make_backend(ckpt, tp);
  ASSERT_NE(side.backend, nullptr);
  ASSERT_TRUE(side.backend->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
  const KvMemory memory = side.backend->kv_memory();
  ASSERT_TRUE(memory.on_device);
  side.copier = std::make_unique<CudaDeviceCopier>(memory.device_id);
  KvRegionDesc region = KvRegionDesc::of(memory);
  if (tp > 1) {
    auto relayout = TpKvRelayout::create(memory, /*shared=*/false, side.copier.get());
    ASSERT_TRUE(relayout.is_ok()) << relayout.status().to_string();
    side.relayout = std::move(relayout).value();
    EXPECT_TRUE(side.relayout->on_device());
    region.base = side.relayout->data();
    region.layout = side.relayout->wire_layout();
  }
  region.copier = side.copier.get();
  TransferEngineOptions opts;
  opts.engine_id = id;
  opts.num_workers = 2;
  opts.default_timeout_ms = 30000;
  auto engine = TransferEngine::create(std::make_unique<TcpTransport>(), opts);
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  side.engine = std::move(engine).value();
  ASSERT_TRUE(side.engine->register_memory(region).is_ok());
}

// The bytes of `blocks` in every rank's cache of `memory`, rank by rank.
std::vector<std::vector<uint8_t>> rank_blocks(const KvMemory& memory, const std::vector<int64_t>& blocks) {
  std::vector<void*> bases = memory.rank_bases.empty() ? std::vector<void*>{memory.base} : memory.rank_bases;
  const size_t bytes = memory.layout.block_bytes();
  std::vector<std::vector<uint8_t>> out;
  for (void* base : bases) {
    std::vector<uint8_t> host(blocks.size() * bytes);
    for (size_t i = 0; i < blocks.size(); ++i)
      EXPECT_EQ(cudaMemcpy(host.data() + i * bytes, static_cast<uint8_t*>(base) + blocks[i] * bytes, bytes,
                           cudaMemcpyDeviceToHost),
                cudaSuccess);
    out.push_back(std::move(host));
  }
  return out;
}

// Head `head` (of the model's) of every row of these blocks' bytes, in a cache of `layout`
// whose first head is `first_head`.
std::vector<uint8_t> head_slice(const std::vector<uint8_t>& blocks, const KvLayout& layout, int first_head, int head) {
  const size_t elem = dtype_size(layout.dtype), row = layout.token_elems() * elem, width = layout.head_dim * elem;
  std::vector<uint8_t> out;
  for (size_t at = (head - first_head) * width; at < blocks.size(); at += row)
    out.insert(out.end(), blocks.begin() + at, blocks.begin() + at + width);
  return out;
}

// Every model KV head of the moved blocks, as the prefill's ranks hold it,
// against every decode rank's copy of the heads it owns.
void expect_heads_moved(const KvMemory& prefill, const KvMemory& decode, const std::vector<int64_t>& blocks) {
  const auto from = rank_blocks(prefill, blocks), to = rank_blocks(decode, blocks);
  const KvTpLayout ptp = prefill.tp_layout(), dtp = decode.tp_layout();
  for (int r = 0; r < dtp.tp_size; ++r) {
    for (int h = dtp.first_kv_head(r); h < dtp.first_kv_head(r) + dtp.kv_heads_per_rank; ++h) {
      const int holder = h / ptp.kv_heads_per_rank * ptp.kv_head_replicas;  // the first prefill rank with head h
      EXPECT_EQ(head_slice(to[r], decode.layout, dtp.first_kv_head(r), h),
                head_slice(from[holder], prefill.layout, ptp.first_kv_head(holder), h))
          << "decode rank " << r << ", KV head " << h;
    }
  }
}

// The prompts' prefill on `prefill` (one step), their blocks pulled into
// `decode`, the rest generated there; every row teacher-forced by `reference`.
Generation pd_generate(Side& prefill, Side& decode, const std::vector<std::vector<int32_t>>& prompts,
                       const Generation& reference) {
  std::vector<TestSeq> seqs(prompts.size());
  std::vector<int64_t> blocks;
  for (size_t i = 0; i < prompts.size(); ++i) {
    seqs[i].tokens = prompts[i];
    seqs[i].prompt_len = static_cast<int>(prompts[i].size());
    seqs[i].params.temperature = 0.0f;
    const int n = (seqs[i].prompt_len + kNewTokens + kBlockSize - 1) / kBlockSize;
    for (int b = 0; b < n; ++b) {
      seqs[i].blocks.push_back(static_cast<int32_t>(blocks.size()));
      blocks.push_back(static_cast<int64_t>(blocks.size()));
    }
  }
  Generation g;
  std::vector<int> index_of;
  for (int step = 0; step < kNewTokens; ++step) {
    std::vector<int> chunk;
    for (const TestSeq& s : seqs) chunk.push_back(step == 0 ? s.prompt_len : 1);
    if (step == 1) {  // the handoff: the prompts' blocks, as PD moves them
      std::vector<int> ids(blocks.begin(), blocks.end());
      if (prefill.relayout) {
        EXPECT_TRUE(prefill.relayout->gather(ids).is_ok());
      }
      auto h = decode.engine->read_blocks("prefill", blocks, blocks);
      EXPECT_TRUE(h.is_ok()) << h.status().to_string();
      if (!h.is_ok()) return g;
      EXPECT_TRUE((*h)->wait(30000).is_ok()) << (*h)->status().to_string();
      if (decode.relayout) {
        EXPECT_TRUE(decode.relayout->scatter(blocks).is_ok());
      }
      expect_heads_moved(prefill.backend->kv_memory(), decode.backend->kv_memory(), blocks);
    }
    Backend& backend = step == 0 ? *prefill.backend : *decode.backend;
    StepInput in = baton::testing::build_step(seqs, chunk, kBlockSize, &index_of);
    in.return_logits = true;
    Result<StepOutput> out = backend.execute(in);
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    if (!out.is_ok()) return g;
    g.logits.insert(g.logits.end(), out->logits.begin(), out->logits.end());
    for (size_t j = 0; j < out->samples.size(); ++j) {
      g.sampled.push_back(out->samples[j].token_id);
      out->samples[j].token_id = reference.outputs[index_of[j]][seqs[index_of[j]].output.size()];
    }
    baton::testing::apply_step(seqs, chunk, *out, index_of);
  }
  for (const TestSeq& s : seqs) g.outputs.push_back(s.output);
  return g;
}

struct Case {
  std::string model;
  int prefill_tp, decode_tp;
};

class CudaTpKvHandoff : public ::testing::TestWithParam<Case> {};

TEST_P(CudaTpKvHandoff, DecodeMatchesAggregatedTp1) {
  BATON_REQUIRE_GPU();
  const Case& c = GetParam();
  auto ckpt = Checkpoint::open(baton::testing::fixture_model_dir(c.model));
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  const auto prompts = baton::testing::golden_prompts(c.model);
  Generation reference;
  {
    auto agg = make_backend(**ckpt, 1);
    ASSERT_NE(agg, nullptr);
    ASSERT_TRUE(agg->init_kv_cache(kNumBlocks, kBlockSize).is_ok());
    baton::testing::GreedyBatch batch;
    batch.new_tokens = kNewTokens;
    batch.prefill_chunk = 1 << 20;  // the whole prompt in one step, as the prefill runs it
    batch.block_size = kBlockSize;
    reference = baton::testing::generate_greedy(*agg, prompts, batch);
  }
  Side prefill, decode;
  ASSERT_NO_FATAL_FAILURE(open_side(prefill, **ckpt, c.prefill_tp, "prefill"));
  ASSERT_NO_FATAL_FAILURE(open_side(decode, **ckpt, c.decode_tp, "decode"));
  ASSERT_TRUE(prefill.engine->start_agent(nullptr).is_ok());
  auto peer = decode.engine->connect_peer("127.0.0.1", prefill.engine->agent_port());
  ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();
  const Generation g = pd_generate(prefill, decode, prompts, reference);
  expect_same_greedy_picks(g, reference, (*ckpt)->config().vocab_size, 2e-2);
}

INSTANTIATE_TEST_SUITE_P(Layouts, CudaTpKvHandoff,
                         ::testing::Values(Case{"qwen3-tiny", 2, 1}, Case{"qwen3-tiny", 1, 2},
                                           Case{"deepseek-v3-tiny", 2, 1}, Case{"deepseek-v3-tiny", 1, 2}),
                         [](const auto& info) {
                           std::string n = info.param.model + "_tp" + std::to_string(info.param.prefill_tp) + "_to_tp" +
                                           std::to_string(info.param.decode_tp);
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace baton::cuda

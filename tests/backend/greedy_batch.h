// Test helper: a batch of prompts run greedily on any Backend — prefill in
// chunks, then a number of new tokens each — recording every sampled row's
// token and (when asked) logits; optionally teacher-forced, so that two
// backends see the same inputs. The CPU and CUDA tensor-parallel tests
// compare their ranks against one rank with it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/fixture_models.h"
#include "backend/step_builder.h"
#include "common/json.h"

namespace baton::testing {

struct GreedyBatch {
  int new_tokens = 6;
  int prefill_chunk = 5;  // prompts longer than this prefill over several steps
  int block_size = 8;
  bool with_logits = true;
};

struct Generation {
  std::vector<std::vector<int32_t>> outputs;  // what each sequence went on with
  std::vector<int32_t> sampled;               // every sampled row's token, in order
  std::vector<float> logits;                  // every sampled row's logits, when asked for
};

// Runs `prompts` as one batch. With `forced`, each sequence goes on with
// forced's tokens instead of its own (teacher forcing).
inline Generation generate_greedy(Backend& backend, const std::vector<std::vector<int32_t>>& prompts,
                                  const GreedyBatch& batch, const Generation* forced = nullptr) {
  std::vector<TestSeq> seqs(prompts.size());
  int next_block = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    seqs[i].tokens = prompts[i];
    seqs[i].prompt_len = static_cast<int>(prompts[i].size());
    seqs[i].params.temperature = 0.0f;
    const int blocks = (seqs[i].prompt_len + batch.new_tokens + batch.block_size - 1) / batch.block_size;
    for (int b = 0; b < blocks; ++b) seqs[i].blocks.push_back(next_block++);
  }
  Generation g;
  std::vector<int> index_of;
  for (int step = 0; step < 64; ++step) {
    std::vector<int> chunk(seqs.size(), 0);
    bool any = false;
    for (size_t i = 0; i < seqs.size(); ++i) {
      if (static_cast<int>(seqs[i].output.size()) >= batch.new_tokens) continue;
      chunk[i] = std::min(batch.prefill_chunk, static_cast<int>(seqs[i].tokens.size()) - seqs[i].num_computed);
      any = true;
    }
    if (!any) break;
    StepInput in = build_step(seqs, chunk, batch.block_size, &index_of);
    in.return_logits = batch.with_logits;
    Result<StepOutput> out = backend.execute(in);
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    if (!out.is_ok()) break;
    EXPECT_EQ(out->samples.size(), in.samples.size());
    g.logits.insert(g.logits.end(), out->logits.begin(), out->logits.end());
    for (size_t j = 0; j < out->samples.size(); ++j) {
      g.sampled.push_back(out->samples[j].token_id);
      if (forced != nullptr) out->samples[j].token_id = forced->outputs[index_of[j]][seqs[index_of[j]].output.size()];
    }
    apply_step(seqs, chunk, *out, index_of);
  }
  for (const TestSeq& s : seqs) g.outputs.push_back(s.output);
  return g;
}

// The first `count` golden prompts of fixture model `name`.
inline std::vector<std::vector<int32_t>> golden_prompts(const std::string& name, size_t count = 3) {
  Result<Json> j = read_json_file(fixture_model_dir(name) + "/golden.json");
  EXPECT_TRUE(j.is_ok()) << j.status().to_string();
  std::vector<std::vector<int32_t>> out;
  if (!j.is_ok()) return out;
  for (const Json& p : (*j)["prompts"]) {
    out.push_back(p["prompt_ids"].get<std::vector<int32_t>>());
    if (out.size() == count) break;
  }
  return out;
}

}  // namespace baton::testing

// The bytes an expert-parallel MoE block moves between ranks, per scheme
// (docs/parallelism.md, "Expert parallelism"): what the choice of
// --enable-expert-parallel's combine rests on, for decode and prefill shapes.
//
//   all_reduce                 every rank has every token (tensor-parallel attention leaves the
//                              hidden states replicated), routes them all, runs its own experts and
//                              one all-reduce sums the partial outputs (what baton runs)
//   all_gather_reduce_scatter  tokens split over the ranks (T/N each): an all-gather of the inputs,
//                              the rank's experts over all tokens, a reduce-scatter of the outputs
//   all_to_all                 tokens split over the ranks: each token sent once to every other rank
//                              holding one of its experts (dispatch) and its partial sent back (combine)
//
// Bytes are what one rank sends per step over all MoE layers, activations in
// bf16, collectives as rings (all-reduce 2(N-1)/N of the buffer, all-gather
// and reduce-scatter (N-1)/N each). all_to_all assumes balanced routing:
// the token's experts uniform over the experts it may pick (DeepSeek-V3: its
// topk_group groups of n_group, with each rank holding whole groups when N
// divides n_group).
#pragma once

#include <cstdint>

#include "model/model_config.h"

namespace baton {

struct MoeExchangeBytes {
  int ranks = 1;
  int64_t tokens = 0;  // tokens in the step (the whole instance's)
  int moe_layers = 0;
  // all_to_all: the expected number of other ranks a token's experts live on.
  double remote_ranks_per_token = 0.0;
  double all_reduce = 0.0;
  double all_gather_reduce_scatter = 0.0;
  double all_to_all = 0.0;
};

// The three schemes' bytes for a step of `tokens` tokens of `config` over
// `ranks` expert-parallel ranks (zeros for a model without experts or one rank).
MoeExchangeBytes moe_exchange_bytes(const ModelConfig& config, int64_t tokens, int ranks);

// P(a given rank holds at least one of a token's k experts) when the k are
// drawn uniformly without replacement from `pool` experts of which the rank
// holds `held`.
double probability_rank_hit(int pool, int held, int k);

}  // namespace baton

// CudaBackend's step inputs: validation of a StepInput (every id, position,
// slot and block checked before anything reaches the GPU) and packing it
// into the one pinned buffer that a step uploads.
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "backend/cuda/cuda_backend.h"
#include "backend/sampler.h"
#include "backend/step_validation.h"

namespace baton::cuda {
namespace {

size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

}  // namespace

SampleRowParams sample_row_params(const SampleRequest& req, int penalty_begin) {
  const SamplingParams& sp = *req.params;
  SampleRowParams p;
  p.temperature = sp.temperature;
  p.top_k = sp.top_k;
  p.top_p = sp.top_p;
  p.min_p = sp.min_p;
  p.repetition_penalty = sp.repetition_penalty;
  p.presence_penalty = sp.presence_penalty;
  p.frequency_penalty = sp.frequency_penalty;
  p.num_logprobs = sp.num_logprobs;
  p.seed = req.seed;
  p.step = static_cast<uint64_t>(req.num_output_tokens);
  p.penalty_begin = penalty_begin;
  p.penalty_end = penalty_begin;
  return p;
}

CudaBackend::Layout CudaBackend::make_layout(int t, int s, int mbps, int ns, int items, int pens) {
  Layout l;
  l.num_tokens = t;
  l.num_seqs = s;
  l.mbps = mbps;
  l.num_samples = ns;
  l.num_items = items;
  l.num_penalties = pens;
  size_t o = 0;
  auto take = [&](size_t bytes) {
    size_t at = o;
    o = align_up(o + bytes, 16);
    return at;
  };
  l.token_ids = take(4 * t);
  l.positions = take(4 * t);
  l.slots = take(8 * t);
  l.query_start = take(4 * (s + 1));
  l.seq_lens = take(4 * s);
  l.block_tables = take(4 * static_cast<size_t>(s) * mbps);
  l.sample_rows = take(4 * ns);
  l.items = take(8 * items);
  l.params = take(sizeof(SampleRowParams) * ns);
  l.penalties = take(sizeof(PenaltyToken) * pens);
  l.bytes = o;
  return l;
}

Status CudaBackend::validate(const StepInput& in) const {
  if (!kv_.get()) return failed_precondition("execute() before init_kv_cache()");
  const int n = in.num_tokens(), num_seqs = in.num_seqs();
  BATON_RETURN_IF_ERROR(validate_step_shape(in));
  if (n > options_.max_num_tokens)
    return invalid_argument("step has {} tokens; the CUDA backend's workspace holds {}", n, options_.max_num_tokens);
  if (static_cast<int>(in.samples.size()) > options_.max_num_samples)
    return invalid_argument("step samples {} sequences; the CUDA backend holds {}", in.samples.size(),
                            options_.max_num_samples);
  const int bs = layout_.block_size;
  for (int s = 0; s < num_seqs; ++s) {
    const int begin = in.query_start[s], end = in.query_start[s + 1];
    if (end < begin || end > n)
      return invalid_argument("query_start[{}] = {} is outside [{}, {}]", s + 1, end, begin, n);
    const int q_len = end - begin, seq_len = in.seq_lens[s];
    if (seq_len < q_len)
      return invalid_argument("sequence {} has seq_len {} below its {} new tokens", s, seq_len, q_len);
    if (static_cast<int64_t>(seq_len) > static_cast<int64_t>(in.max_blocks_per_seq) * bs)
      return invalid_argument("sequence {} has seq_len {} past its block table of {} blocks", s, seq_len,
                              in.max_blocks_per_seq);
    const int32_t* table = in.block_tables.data() + static_cast<size_t>(s) * in.max_blocks_per_seq;
    for (int t = begin; t < end; ++t) {
      const int32_t id = in.token_ids[t], pos = in.positions[t];
      if (id < 0 || id >= config_.vocab_size)
        return invalid_argument("token id {} at index {} is outside the vocabulary [0, {})", id, t, config_.vocab_size);
      if (pos != seq_len - q_len + (t - begin))
        return invalid_argument("token {} of sequence {} has position {}, expected {} (cached context + offset)", t, s,
                                pos, seq_len - q_len + (t - begin));
      if (pos >= config_.max_position_embeddings)
        return out_of_range("position {} is beyond the model's context of {} tokens", pos,
                            config_.max_position_embeddings);
      const int64_t expected_slot = static_cast<int64_t>(table[pos / bs]) * bs + pos % bs;
      if (in.slot_mapping[t] != expected_slot)
        return invalid_argument("token {} (sequence {}, position {}) maps to slot {}, but its block table says {}", t,
                                s, pos, in.slot_mapping[t], expected_slot);
    }
    for (int b = 0; b < (seq_len + bs - 1) / bs; ++b)
      if (table[b] < 0 || table[b] >= layout_.num_blocks)
        return invalid_argument("sequence {} block table entry {} is {}, outside [0, {})", s, b, table[b],
                                layout_.num_blocks);
  }
  BATON_RETURN_IF_ERROR(validate_sample_rows(in));
  for (const SampleRequest& r : in.samples) {
    BATON_RETURN_IF_ERROR(validate_sampling_params(*r.params));
    for (int32_t id : r.banned_token_ids)
      if (id < 0 || id >= config_.vocab_size) return invalid_argument("banned token id {} outside the vocabulary", id);
    for (const auto& bias : r.params->logit_bias)
      if (bias.first >= config_.vocab_size)
        return invalid_argument("logit_bias token id {} outside the vocabulary", bias.first);
    for (const auto* ids : {r.prompt_ids, r.output_ids})
      if (ids)
        for (int32_t id : *ids)
          if (id < 0 || id >= config_.vocab_size)
            return invalid_argument("history token id {} outside the vocabulary", id);
  }
  return Status::ok();
}

bool CudaBackend::pack(const StepInput& in, const Layout& lay, bool pad, const std::vector<int>& rows) {
  char* base = static_cast<char*>(input_host_);
  auto* tok = reinterpret_cast<int32_t*>(base + lay.token_ids);
  auto* pos = reinterpret_cast<int32_t*>(base + lay.positions);
  auto* slot = reinterpret_cast<int64_t*>(base + lay.slots);
  auto* qs = reinterpret_cast<int32_t*>(base + lay.query_start);
  auto* sl = reinterpret_cast<int32_t*>(base + lay.seq_lens);
  auto* bt = reinterpret_cast<int32_t*>(base + lay.block_tables);
  auto* sr = reinterpret_cast<int32_t*>(base + lay.sample_rows);
  auto* items = reinterpret_cast<int32_t*>(base + lay.items);
  auto* params = reinterpret_cast<SampleRowParams*>(base + lay.params);
  auto* pens = reinterpret_cast<PenaltyToken*>(base + lay.penalties);
  const int n = in.num_tokens(), s = in.num_seqs();
  std::memcpy(tok, in.token_ids.data(), 4 * n);
  if (shard_.world_size > 1) {  // the rank's row of its vocabulary slice, or its zero row (weights_.embed)
    const int64_t v0 = shard_.vocab_begin, count = shard_.vocab_count(model_config_);
    for (int t = 0; t < n; ++t)
      tok[t] = tok[t] >= v0 && tok[t] < v0 + count ? static_cast<int32_t>(tok[t] - v0) : vocab_rows_;
  }
  std::memcpy(pos, in.positions.data(), 4 * n);
  std::memcpy(slot, in.slot_mapping.data(), 8 * n);
  std::memcpy(qs, in.query_start.data(), 4 * (s + 1));
  std::memcpy(sl, in.seq_lens.data(), 4 * s);
  for (int t = n; t < lay.num_tokens; ++t) {  // decode padding: one dummy token per dummy sequence
    tok[t] = 0;
    pos[t] = 0;
    slot[t] = -1;
  }
  for (int i = s; i < lay.num_seqs; ++i) {
    qs[i + 1] = qs[i] + 1;
    sl[i] = 1;
  }
  for (int i = 0; i < lay.num_seqs; ++i) {
    int32_t* row = bt + static_cast<size_t>(i) * lay.mbps;
    const int have = i < s ? std::min(in.max_blocks_per_seq, lay.mbps) : 0;
    for (int b = 0; b < have; ++b) {
      int32_t v = in.block_tables[static_cast<size_t>(i) * in.max_blocks_per_seq + b];
      row[b] = v < 0 ? 0 : v;
    }
    for (int b = have; b < lay.mbps; ++b) row[b] = 0;
  }
  // Prefill work items: (seq, first row of the tile), heaviest (last) tiles first.
  if (lay.num_items > 0) {
    const int per_token = attention_rows_per_token(), rpt = attention_rows_per_item();
    int k = 0;
    for (int i = 0; i < s; ++i) {
      int rows_i = (in.query_start[i + 1] - in.query_start[i]) * per_token;
      for (int tile = (rows_i + rpt - 1) / rpt - 1; tile >= 0; --tile) {
        items[2 * k] = i;
        items[2 * k + 1] = tile * rpt;
        ++k;
      }
    }
  }
  // Sampling rows and their parameters.
  int np = 0;
  std::unordered_map<int32_t, int> index;
  for (int r = 0; r < lay.num_samples; ++r) {
    const int si = rows[r];  // index into in.samples, or -1
    SampleRowParams p;
    if (si < 0) {
      sr[r] = pad ? r : 0;
      params[r] = p;
      continue;
    }
    const SampleRequest& req = in.samples[si];
    sr[r] = in.query_start[req.seq_index + 1] - 1;
    const SamplingParams& sp = *req.params;
    p = sample_row_params(req, np);
    index.clear();
    auto entry = [&](int32_t id) -> PenaltyToken* {
      auto it = index.find(id);
      if (it != index.end()) return &pens[it->second];
      if (np >= lay.num_penalties) return nullptr;
      index.emplace(id, np);
      pens[np] = PenaltyToken{id, 0, 0, 0, 0.0f};
      return &pens[np++];
    };
    for (int32_t id : req.banned_token_ids) {
      PenaltyToken* e = entry(id);
      if (!e) return false;
      e->banned = 1;
    }
    for (const auto& [id, bias] : sp.logit_bias) {
      PenaltyToken* e = entry(id);
      if (!e) return false;
      e->bias = bias;
    }
    if (sp.repetition_penalty != 1.0f) {
      for (const auto* ids : {req.prompt_ids, req.output_ids})
        if (ids)
          for (int32_t id : *ids) {
            PenaltyToken* e = entry(id);
            if (!e) return false;
            e->seen = 1;
          }
    }
    if ((sp.presence_penalty != 0.0f || sp.frequency_penalty != 0.0f) && req.output_ids) {
      for (int32_t id : *req.output_ids) {
        PenaltyToken* e = entry(id);
        if (!e) return false;
        e->output_count++;
      }
    }
    p.penalty_end = np;
    params[r] = p;
  }
  return true;
}

}  // namespace baton::cuda

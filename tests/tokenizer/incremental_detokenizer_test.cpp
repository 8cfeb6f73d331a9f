// The streaming detokenizer: equal to a full decode, and never a broken
// UTF-8 sequence in any delta.
#include "tokenizer/incremental_detokenizer.h"

#include <gtest/gtest.h>

#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace baton {
namespace {

using testing::real_tokenizer;

bool is_valid_utf8(const std::string& s) { return !tokenizer::find_invalid_utf8(s).has_value(); }

// Streams ids one at a time; checks each delta and the total.
void expect_streams_like_decode(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  IncrementalDetokenizer detok(tok, skip_special);
  std::string streamed;
  for (int32_t id : ids) {
    auto delta = detok.step(id);
    ASSERT_TRUE(delta.is_ok());
    EXPECT_TRUE(is_valid_utf8(*delta)) << "broken UTF-8 in a delta after id " << id;
    streamed += *delta;
  }
  const std::string rest = detok.finish();
  EXPECT_TRUE(is_valid_utf8(rest));
  streamed += rest;
  EXPECT_EQ(streamed, detok.text());
  EXPECT_EQ(streamed, *tok.decode(ids, skip_special));
}

TEST(IncrementalDetokenizerTest, MultiByteCharactersSplitAcrossTokens) {
  const std::string text =
      "👍🏽 emoji 🚀🔥 你好，世界！ こんにちは 안녕하세요 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 naïve";
  for (const char* name : {"qwen3", "llama3"}) {
    const Tokenizer& tok = real_tokenizer(name);
    auto ids = tok.encode(text, false);
    ASSERT_TRUE(ids.is_ok());
    // The emoji really are split: some token is not valid UTF-8 on its own.
    bool some_partial = false;
    for (int32_t id : *ids) some_partial |= !is_valid_utf8(std::string(tok.token_bytes(id)));
    EXPECT_TRUE(some_partial) << name;
    expect_streams_like_decode(tok, *ids, false);
  }
}

TEST(IncrementalDetokenizerTest, HoldsBackIncompleteBytesUntilCompleted) {
  const Tokenizer& tok = real_tokenizer("llama3");
  // Llama-3 spells 👍 (F0 9F 91 8D) as 9468 (F0 9F), 239 (91), 235 (8D).
  ASSERT_EQ(tok.token_bytes(9468), "\xF0\x9F");
  IncrementalDetokenizer detok(tok, false);
  EXPECT_EQ(*detok.step(13347), "Hi");
  EXPECT_EQ(*detok.step(9468), "");
  EXPECT_EQ(detok.num_pending_bytes(), 2u);
  EXPECT_EQ(*detok.step(239), "");
  EXPECT_EQ(*detok.step(235), "👍");
  EXPECT_EQ(detok.num_pending_bytes(), 0u);
}

TEST(IncrementalDetokenizerTest, BrokenSequencesBecomeReplacementCharacters) {
  const Tokenizer& tok = real_tokenizer("llama3");
  // A lead byte followed by plain text, and a stream that ends mid-character.
  for (const auto& ids : {std::vector<int32_t>{9468, 13347}, std::vector<int32_t>{13347, 9468, 239},
                          std::vector<int32_t>{239, 235, 9468}}) {
    expect_streams_like_decode(tok, ids, false);
  }
  IncrementalDetokenizer detok(tok, false);
  EXPECT_EQ(*detok.step(9468), "");
  EXPECT_EQ(detok.finish(), "\xEF\xBF\xBD");
}

TEST(IncrementalDetokenizerTest, EveryTokenOfTheVocabularyStreamsLikeDecode) {
  // All ids in order, then in a scrambled order: random byte soup.
  for (const char* name : {"qwen3", "llama3"}) {
    const Tokenizer& tok = real_tokenizer(name);
    std::vector<int32_t> ids(static_cast<size_t>(tok.vocab_size()));
    for (int32_t i = 0; i < tok.vocab_size(); ++i) ids[i] = i;
    expect_streams_like_decode(tok, ids, true);
    std::vector<int32_t> scrambled(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) scrambled[i] = ids[(i * 7919) % ids.size()];
    expect_streams_like_decode(tok, scrambled, false);
  }
}

TEST(IncrementalDetokenizerTest, SkipsSpecialTokensWhenAsked) {
  const Tokenizer& tok = real_tokenizer("qwen3");
  IncrementalDetokenizer detok(tok, true);
  EXPECT_EQ(*detok.step(151644), "");  // <|im_start|>
  EXPECT_EQ(*detok.step(9707), "Hello");
  EXPECT_EQ(*detok.step(151667), "<think>");  // added, not special
  EXPECT_FALSE(detok.step(-3).is_ok());
}

}  // namespace
}  // namespace baton

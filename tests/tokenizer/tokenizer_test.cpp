// The Tokenizer against the fixture cases made with HF tokenizers, plus its
// error paths.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer_test_util.h"

namespace baton {
namespace {

using testing::fixture;
using testing::real_tokenizer;
using testing::tokenizer_dir;

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, EncodeMatchesEveryCase) {
  const Tokenizer& tok = real_tokenizer(GetParam());
  Json fx = fixture(GetParam());
  ASSERT_GT(fx["cases"].size(), 30u);
  for (const auto& c : fx["cases"]) {
    const std::string text = c["text"];
    auto ids = tok.encode(text, /*add_special_tokens=*/false);
    ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int32_t>>()) << "text: " << text;
  }
}

TEST_P(FixtureTest, DecodeMatchesEveryCase) {
  const Tokenizer& tok = real_tokenizer(GetParam());
  const Json fx = fixture(GetParam());  // kept: a range-for over a temporary's member would dangle
  ASSERT_GE(fx["cases"].size(), 30u);
  for (const auto& c : fx["cases"]) {
    auto ids = c["ids"].get<std::vector<int32_t>>();
    auto text = tok.decode(ids, /*skip_special_tokens=*/false);
    ASSERT_TRUE(text.is_ok()) << text.status().to_string();
    EXPECT_EQ(*text, c["decoded"].get<std::string>());
  }
}

TEST_P(FixtureTest, IncrementalDecodeEqualsFullDecodeOnEveryCase) {
  const Tokenizer& tok = real_tokenizer(GetParam());
  const Json fx = fixture(GetParam());  // kept: a range-for over a temporary's member would dangle
  ASSERT_GE(fx["cases"].size(), 30u);
  for (const auto& c : fx["cases"]) {
    auto ids = c["ids"].get<std::vector<int32_t>>();
    for (bool skip : {false, true}) {
      IncrementalDetokenizer detok(tok, skip);
      std::string streamed;
      for (int32_t id : ids) {
        auto delta = detok.step(id);
        ASSERT_TRUE(delta.is_ok());
        streamed += *delta;
      }
      streamed += detok.finish();
      auto full = tok.decode(ids, skip);
      ASSERT_TRUE(full.is_ok());
      EXPECT_EQ(streamed, *full) << c["text"].get<std::string>();
    }
  }
}

TEST_P(FixtureTest, ChatTemplateRendersAndEncodesEveryCase) {
  const Tokenizer& tok = real_tokenizer(GetParam());
  Json fx = fixture(GetParam());
  ASSERT_FALSE(fx["chat_template_cases"].empty());
  for (const auto& c : fx["chat_template_cases"]) {
    auto messages = parse_chat_messages(c["messages"]);
    ASSERT_TRUE(messages.is_ok()) << messages.status().to_string();
    ChatTemplateOptions options;
    if (c["kwargs"].contains("enable_thinking")) options.enable_thinking = c["kwargs"]["enable_thinking"].get<bool>();
    auto rendered = tok.apply_chat_template(*messages, options);
    ASSERT_TRUE(rendered.is_ok()) << rendered.status().to_string();
    EXPECT_EQ(*rendered, c["rendered"].get<std::string>());
    auto ids = tok.encode(*rendered, /*add_special_tokens=*/false);
    ASSERT_TRUE(ids.is_ok());
    EXPECT_EQ(*ids, c["ids"].get<std::vector<int32_t>>());
  }
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, FixtureTest, ::testing::Values("qwen3", "llama3"));

TEST(TokenizerTest, SpecialTokensAndVocab) {
  const Tokenizer& qwen = real_tokenizer("qwen3");
  EXPECT_EQ(qwen.vocab_size(), 151669);
  EXPECT_EQ(qwen.eos_token_id(), 151645);  // <|im_end|>
  EXPECT_EQ(qwen.pad_token_id(), 151643);  // <|endoftext|>
  EXPECT_FALSE(qwen.bos_token_id().has_value());
  EXPECT_EQ(*qwen.special_token_id("<|im_start|>"), 151644);
  EXPECT_EQ(*qwen.special_token_id("<think>"), 151667);
  EXPECT_TRUE(qwen.is_special(151644));
  EXPECT_FALSE(qwen.is_special(151667));  // <think> is added but not special
  EXPECT_EQ(qwen.token_to_id("Hello"), 9707);
  EXPECT_EQ(qwen.token_to_id("ĠHello"), 21927);
  EXPECT_EQ(qwen.id_to_token(21927), "ĠHello");
  EXPECT_EQ(qwen.token_bytes(21927), " Hello");
  EXPECT_FALSE(qwen.token_to_id("definitely-not-a-token").has_value());

  const Tokenizer& llama = real_tokenizer("llama3");
  EXPECT_EQ(llama.vocab_size(), 128256);
  EXPECT_EQ(llama.bos_token_id(), 128000);
  EXPECT_EQ(llama.eos_token_id(), 128001);
  EXPECT_EQ(*llama.special_token_id("<|eot_id|>"), 128009);
}

TEST(TokenizerTest, UnknownSpecialTokenIsNotFoundNamingIt) {
  auto id = real_tokenizer("qwen3").special_token_id("<|no_such_token|>");
  ASSERT_FALSE(id.is_ok());
  EXPECT_EQ(id.status().code(), StatusCode::kNotFound);
  EXPECT_NE(id.status().message().find("<|no_such_token|>"), std::string::npos);
}

TEST(TokenizerTest, InvalidUtf8IsInvalidArgumentWithOffset) {
  const Tokenizer& tok = real_tokenizer("qwen3");
  struct Case {
    std::string text;
    size_t offset;
  };
  for (const Case& c : {Case{"ab\xFF"
                             "cd",
                             2},
                        Case{"hello \xC3", 6},
                        Case{"x\xE4\xBD"
                             "y",
                             3},
                        Case{"\xED\xA0\x80", 1} /* surrogate */, Case{"\xC0\xAF", 0} /* overlong */}) {
    auto ids = tok.encode(c.text);
    ASSERT_FALSE(ids.is_ok());
    EXPECT_EQ(ids.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ids.status().message().find("offset " + std::to_string(c.offset)), std::string::npos)
        << ids.status().message();
  }
}

TEST(TokenizerTest, SkipSpecialTokensDropsOnlySpecialOnes) {
  const Tokenizer& tok = real_tokenizer("qwen3");
  auto ids = tok.encode("<|im_start|>user\nHi<think>x</think><|im_end|>");
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ(*tok.decode(*ids, true), "user\nHi<think>x</think>");
  EXPECT_EQ(*tok.decode(*ids, false), "<|im_start|>user\nHi<think>x</think><|im_end|>");
}

TEST(TokenizerTest, DecodeHandlesBrokenBytesAndUnknownIds) {
  const Tokenizer& tok = real_tokenizer("llama3");
  // 9468 is the first byte of an emoji on its own: a lone lead byte.
  auto text = tok.decode(std::vector<int32_t>{9468, 13347});
  ASSERT_TRUE(text.is_ok());
  EXPECT_EQ(*text,
            "\xEF\xBF\xBD"
            "Hi");
  EXPECT_FALSE(tok.decode(std::vector<int32_t>{-1}).is_ok());
  EXPECT_EQ(*tok.decode(std::vector<int32_t>{13347, 500000}), "Hi");
}

TEST(TokenizerTest, NfcNormalizesForQwenOnly) {
  // "e" + combining acute: Qwen3 (NFC) encodes it as the precomposed é.
  auto decomposed = real_tokenizer("qwen3").encode(
      "caf"
      "e\xCC\x81");
  auto composed = real_tokenizer("qwen3").encode("caf\xC3\xA9");
  EXPECT_EQ(*decomposed, *composed);
  auto l_decomposed = real_tokenizer("llama3").encode(
      "caf"
      "e\xCC\x81");
  auto l_composed = real_tokenizer("llama3").encode("caf\xC3\xA9");
  EXPECT_NE(*l_decomposed, *l_composed);
}

TEST(TokenizerTest, LongAndRepetitiveInputs) {
  const Tokenizer& tok = real_tokenizer("qwen3");
  for (const std::string& text :
       {std::string(200000, ' '), std::string(100000, 'a'), std::string(50000, '\n'), std::string(30000, '1')}) {
    auto ids = tok.encode(text);
    ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
    EXPECT_EQ(*tok.decode(*ids), text);
  }
}

TEST(TokenizerTest, ConcurrentEncodesAgree) {
  // The word cache is shared: many threads encoding at once must each get
  // what a lone encode gives.
  const Tokenizer& tok = real_tokenizer("qwen3");
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) {
    texts.push_back(fmt::format("request {} asks about word{} and 数字{} with emoji 🚀 and code x_{} += {};", i, i % 7,
                                i * 31, i, i * i));
  }
  std::vector<std::vector<int32_t>> expected;
  for (const auto& t : texts) expected.push_back(*tok.encode(t));
  std::atomic<int> num_mismatches{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int rep = 0; rep < 50; ++rep) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i * 13 + static_cast<size_t>(th) * 7 + static_cast<size_t>(rep)) % texts.size();
          if (*tok.encode(texts[k]) != expected[k]) ++num_mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(num_mismatches.load(), 0);
}

TEST(TokenizerTest, RoundTripsMixedText) {
  const std::string text =
      "Mixed: English, 中文，日本語のテキスト, 한국어, русский, العربية, emoji 👍🏽🚀, code `x += 1;`\r\n\t"
      "numbers 1234567 and <|im_start|> <|begin_of_text|> inside.";
  for (const char* name : {"qwen3", "llama3"}) {
    const Tokenizer& tok = real_tokenizer(name);
    auto ids = tok.encode(text);
    ASSERT_TRUE(ids.is_ok());
    EXPECT_EQ(*tok.decode(*ids), text) << name;
  }
}

TEST(TokenizerTest, TemplatePostProcessorPrependsBos) {
  // Llama-3.1's tokenizer.json has a TemplateProcessing post-processor that
  // adds <|begin_of_text|>; graft one onto the Llama-3 file.
  auto text = read_file(tokenizer_dir("llama3") + "/tokenizer.json");
  ASSERT_TRUE(text.is_ok());
  Json j = Json::parse(*text);
  j["post_processor"] = Json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [], "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000],
      "tokens": ["<|begin_of_text|>"]}}})");
  auto tok = Tokenizer::from_json_text(j.dump(), "");
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  EXPECT_EQ(*(*tok)->encode("Hello world", true), (std::vector<int32_t>{128000, 9906, 1917}));
  EXPECT_EQ(*(*tok)->encode("Hello world", false), (std::vector<int32_t>{9906, 1917}));
  auto chat = (*tok)->apply_chat_template({{"user", "hi", {}}});
  EXPECT_EQ(chat.status().code(), StatusCode::kNotFound);  // no tokenizer_config.json given
}

TEST(TokenizerTest, CorruptTokenizerJsonIsAClearError) {
  auto text = read_file(tokenizer_dir("qwen3") + "/tokenizer.json");
  ASSERT_TRUE(text.is_ok());
  // Truncated in the middle of the vocabulary.
  auto truncated = Tokenizer::from_json_text(std::string_view(*text).substr(0, text->size() / 2), "");
  ASSERT_FALSE(truncated.is_ok());
  EXPECT_EQ(truncated.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(truncated.status().message().find("malformed tokenizer.json"), std::string::npos)
      << truncated.status().message();

  Json j = Json::parse(*text);
  Json no_model = j;
  no_model.erase("model");
  EXPECT_NE(Tokenizer::from_json_text(no_model.dump(), "").status().message().find("'model'"), std::string::npos);

  Json bad_merge = j;
  bad_merge["model"]["merges"][5] = Json::array({"Ġ", "nonexistent-token"});
  auto m = Tokenizer::from_json_text(bad_merge.dump(), "");
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("merge 5"), std::string::npos) << m.status().message();

  Json wordpiece = j;
  wordpiece["model"]["type"] = "WordPiece";
  EXPECT_EQ(Tokenizer::from_json_text(wordpiece.dump(), "").status().code(), StatusCode::kUnimplemented);

  Json bad_normalizer = j;
  bad_normalizer["normalizer"] = Json::parse(R"({"type": "BertNormalizer"})");
  auto n = Tokenizer::from_json_text(bad_normalizer.dump(), "");
  EXPECT_EQ(n.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(n.status().message().find("BertNormalizer"), std::string::npos);

  Json bad_regex = j;
  bad_regex["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  EXPECT_NE(Tokenizer::from_json_text(bad_regex.dump(), "").status().message().find("does not compile"),
            std::string::npos);

  Json string_id = j;
  string_id["model"]["vocab"]["Hello"] = "9707";
  auto sid = Tokenizer::from_json_text(string_id.dump(), "");
  EXPECT_EQ(sid.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(sid.status().message().find("vocab entry 'Hello'"), std::string::npos) << sid.status().message();

  Json numeric_merge = j;
  numeric_merge["model"]["merges"][7] = 12;
  auto nm = Tokenizer::from_json_text(numeric_merge.dump(), "");
  EXPECT_NE(nm.status().message().find("merge 7"), std::string::npos) << nm.status().message();

  Json vocab_array = j;
  vocab_array["model"]["vocab"] = Json::array({"a", "b"});
  EXPECT_NE(Tokenizer::from_json_text(vocab_array.dump(), "").status().message().find("model.vocab"),
            std::string::npos);

  EXPECT_FALSE(Tokenizer::from_json_text("[]", "").is_ok());
  EXPECT_FALSE(Tokenizer::from_json_text(j.dump(), "{\"eos_token\": \"<|nope|>\"}").is_ok());
  EXPECT_EQ(Tokenizer::load("/nonexistent/dir").status().code(), StatusCode::kNotFound);
}

TEST(TokenizerTest, AddedTokenFlagsStripAndSingleWord) {
  auto text = read_file(tokenizer_dir("qwen3") + "/tokenizer.json");
  ASSERT_TRUE(text.is_ok());
  Json j = Json::parse(*text);
  for (auto& t : j["added_tokens"]) {
    if (t["content"] == "<|im_end|>") t["lstrip"] = t["rstrip"] = true;
    if (t["content"] == "<think>") t["single_word"] = true;
  }
  auto tok = Tokenizer::from_json_text(j.dump(), "");
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  // lstrip/rstrip swallow the spaces around <|im_end|>.
  EXPECT_EQ(*(*tok)->encode("Hi  <|im_end|>  x"), *(*tok)->encode("Hi<|im_end|>x"));
  // single_word: <think> glued to a word is plain text, alone it is the token.
  auto glued = (*tok)->encode("a<think>b");
  auto alone = (*tok)->encode("a <think> b");
  EXPECT_EQ(std::count(glued->begin(), glued->end(), 151667), 0);
  EXPECT_EQ(std::count(alone->begin(), alone->end(), 151667), 1);
}

}  // namespace
}  // namespace baton

namespace baton {
namespace {

// 200 random texts (mixed scripts, combining marks, emoji, whitespace runs,
// special-token strings) encoded by an independent implementation, the
// transformers.js port in node_modules/@lenml/tokenizers.
TEST(TokenizerTest, MatchesTransformersJsOnRandomMixedText) {
  auto cases = read_json_file(std::string(BATON_TEST_DATA) + "/../tokenizer/transformersjs_cases.json");
  ASSERT_TRUE(cases.is_ok()) << cases.status().to_string();
  ASSERT_EQ((*cases)["cases"].size(), 200u);
  for (const char* name : {"qwen3", "llama3"}) {
    const Tokenizer& tok = testing::real_tokenizer(name);
    int num_mismatches = 0;
    for (const auto& c : (*cases)["cases"]) {
      auto ids = tok.encode(c["text"].get<std::string>(), false);
      ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
      if (*ids != c[name].get<std::vector<int32_t>>()) {
        ++num_mismatches;
        ADD_FAILURE() << name << " differs on " << c["text"].dump();
      }
    }
    EXPECT_EQ(num_mismatches, 0) << name;
  }
}

}  // namespace
}  // namespace baton

// The decoder steps of tokenizer.json on their own, with the examples of
// the HF tokenizers tests.
#include "tokenizer/decoder.h"

#include <gtest/gtest.h>

namespace baton::tokenizer {
namespace {

std::string decode(const char* spec, std::vector<std::string> tokens) {
  auto d = Decoder::from_json(Json::parse(spec));
  EXPECT_TRUE(d.is_ok()) << d.status().to_string();
  return d.is_ok() ? d->decode(std::move(tokens)) : std::string();
}

constexpr const char* kLlama2 = R"({"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})";

TEST(DecoderTest, SentencePieceSequence) {
  EXPECT_EQ(decode(kLlama2, {"▁Hey", "▁friend", "!"}), "Hey friend!");
  EXPECT_EQ(decode(kLlama2, {"▁", "▁Hey"}), " Hey");  // only one leading space is stripped
  EXPECT_EQ(decode(kLlama2, {"<0xE2>", "<0x82>", "<0xAC>", "▁x"}), "€ x");
  EXPECT_EQ(decode(kLlama2, {"a", "<0xE2>", "<0x82>"}), "a\xEF\xBF\xBD\xEF\xBF\xBD");  // one U+FFFD per byte
  EXPECT_EQ(decode(kLlama2, {"<0xe2>", "<0x82>", "<0xac>"}), "€");                     // lowercase hex parses too
  EXPECT_EQ(decode(kLlama2, {"<0xZZ>"}), "<0xZZ>");                                    // not a byte token
}

TEST(DecoderTest, MetaspaceAndStripAndNone) {
  const char* meta = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true})";
  EXPECT_EQ(decode(meta, {"▁Hey", "▁friend!"}), "Hey friend!");
  const char* never = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": true})";
  EXPECT_EQ(decode(never, {"▁Hey", "▁friend!"}), " Hey friend!");
  const char* strip = R"({"type": "Strip", "content": "x", "start": 2, "stop": 1})";
  EXPECT_EQ(decode(strip, {"xxxaxx", "ab"}), "xaxab");  // per token
  auto none = Decoder::from_json(Json());
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(none->decode({"a", "b"}), "a b");  // HF joins with spaces when there is no decoder
  EXPECT_FALSE(none->is_byte_level());
}

TEST(DecoderTest, ByteLevelAndTokenPieces) {
  auto bl = Decoder::from_json(Json::parse(R"({"type": "ByteLevel", "add_prefix_space": true})"));
  ASSERT_TRUE(bl.is_ok());
  EXPECT_TRUE(bl->is_byte_level());
  EXPECT_EQ(bl->decode({"Hello", "Ġworld", "<｜end｜>"}), "Hello world<｜end｜>");
  EXPECT_EQ(bl->token_piece("ĠâĤ"), " \xE2\x82");
  auto sp = Decoder::from_json(Json::parse(kLlama2));
  ASSERT_TRUE(sp.is_ok());
  EXPECT_FALSE(sp->is_byte_level());
  EXPECT_EQ(sp->token_piece("▁the"), " the");  // Strip after Fuse only touches a text's start
  EXPECT_EQ(sp->token_piece("<0xE2>"), "\xE2");
  auto bad = Decoder::from_json(Json::parse(R"({"type": "Strip", "content": " ", "start": -1, "stop": 0})"));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton::tokenizer

// The normalizers of tokenizer.json: NFC and its fast path, the other
// Unicode forms, and the SentencePiece-style steps.
#include "tokenizer/normalizer.h"

#include <gtest/gtest.h>

#include "tokenizer/utf8.h"

namespace baton::tokenizer {
namespace {

TEST(NormalizerTest, FastPathCodePointsAreLeftAloneByNfc) {
  auto nfc = Normalizer::from_json(Json::parse(R"({"type": "NFC"})"));
  ASSERT_TRUE(nfc.is_ok());
  size_t num_stable = 0;
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s = "a";
    append_utf8(s, cp);
    if (!is_trivially_nfc(s)) continue;
    ++num_stable;
    // Unchanged alone and after a base letter (it is no combining mark).
    std::string out;
    ASSERT_TRUE(nfc->apply(s, out).is_ok());
    ASSERT_EQ(out, s) << "U+" << std::hex << static_cast<uint32_t>(cp);
  }
  EXPECT_GT(num_stable, 30000u);
}

TEST(NormalizerTest, ComposesAndReorders) {
  auto nfc = Normalizer::from_json(Json::parse(R"({"type": "Sequence", "normalizers": [{"type": "NFC"}]})"));
  ASSERT_TRUE(nfc.is_ok());
  std::string out;
  // e + combining acute -> é; Hangul LV syllable + trailing jamo -> LVT;
  // combining marks put in canonical order (dot below before acute).
  ASSERT_TRUE(nfc->apply("e\xCC\x81 \xEC\x95\x84\xE1\x86\xAB q\xCC\x81\xCC\xA3", out).is_ok());
  EXPECT_EQ(out, "\xC3\xA9 \xEC\x95\x88 q\xCC\xA3\xCC\x81");
  EXPECT_TRUE(Normalizer::from_json(Json()).is_ok());
  auto bert = Normalizer::from_json(Json::parse(R"({"type": "BertNormalizer"})"));
  EXPECT_EQ(bert.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(bert.status().message().find("BertNormalizer"), std::string::npos);
}

std::string normalize(const char* spec, std::string_view text) {
  auto n = Normalizer::from_json(Json::parse(spec));
  EXPECT_TRUE(n.is_ok()) << n.status().to_string();
  std::string out;
  if (n.is_ok()) {
    EXPECT_TRUE(n->apply(text, out).is_ok());
  }
  return out;
}

TEST(NormalizerTest, SentencePieceSteps) {
  // Llama-2: Prepend ▁, then spaces -> ▁; an empty text gets no prefix.
  const char* llama2 = R"({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]})";
  EXPECT_EQ(normalize(llama2, "Hello big world"), "▁Hello▁big▁world");
  EXPECT_EQ(normalize(llama2, ""), "");
  EXPECT_EQ(normalize(R"({"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": "_"})", "a  b\tc"), "a_b_c");
}

TEST(NormalizerTest, OtherUnicodeFormsLowercaseAndStrip) {
  EXPECT_EQ(normalize(R"({"type": "NFKC"})", "\xEF\xAC\x81"), "fi");  // the ligature ﬁ
  EXPECT_EQ(normalize(R"({"type": "NFD"})", "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(normalize(R"({"type": "Lowercase"})", "HeLLo \xC3\x89\xC4\xB0"), "hello \xC3\xA9i\xCC\x87");
  EXPECT_EQ(normalize(R"({"type": "Strip", "strip_left": true, "strip_right": false})", " \t a b \n"), "a b \n");
  EXPECT_EQ(normalize(R"({"type": "Strip", "strip_left": true, "strip_right": true})",
                      "\xE3\x80\x80"
                      "a b "),
            "a b");
}

}  // namespace
}  // namespace baton::tokenizer

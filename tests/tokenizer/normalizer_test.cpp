// The NFC normalizer and its fast path.
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

}  // namespace
}  // namespace baton::tokenizer

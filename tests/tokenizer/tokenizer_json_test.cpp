// parse_tokenizer_json / Tokenizer::from_json_text on hostile files.
#include "tokenizer/tokenizer_json.h"

#include <gtest/gtest.h>

#include <string>

#include "tokenizer/tokenizer.h"

namespace baton {
namespace {

// A minimal byte-level BPE tokenizer.json around a given normalizer.
std::string tokenizer_json_with_normalizer(const std::string& normalizer) {
  return R"({"version": "1.0", "added_tokens": [], "normalizer": )" + normalizer +
         R"(, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
            "use_regex": true}, "post_processor": null, "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}})";
}

TEST(TokenizerJsonTest, DeeplyNestedSequenceIsRefusedNotAStackOverflow) {
  // 50,000 nested "Sequence" normalizers overflowed the stack of the
  // recursive normalizer loader (reproduced through fuzz/tokenizer_json_fuzz).
  const int depth = 50000;
  std::string deep;
  for (int i = 0; i < depth; ++i) deep += R"({"type": "Sequence", "normalizers": [)";
  deep += R"({"type": "NFC"})";
  for (int i = 0; i < depth; ++i) deep += "]}";
  auto tok = Tokenizer::from_json_text(tokenizer_json_with_normalizer(deep), "");
  ASSERT_FALSE(tok.is_ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tok.status().message().find("nested deeper than 64"), std::string::npos) << tok.status().message();
}

TEST(TokenizerJsonTest, ShallowSequenceStillLoads) {
  auto parsed = tokenizer::parse_tokenizer_json(
      tokenizer_json_with_normalizer(R"({"type": "Sequence", "normalizers": [{"type": "NFC"}]})"));
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->vocab.size(), 3u);
  ASSERT_EQ(parsed->merges.size(), 1u);
  EXPECT_EQ(parsed->merges[0], (std::pair<std::string, std::string>{"a", "b"}));
}

}  // namespace
}  // namespace baton

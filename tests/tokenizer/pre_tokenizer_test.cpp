// The pre-tokenizer steps of tokenizer.json on their own, with the examples
// of the HF tokenizers documentation and tests.
#include "tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

namespace baton::tokenizer {
namespace {

std::vector<std::string> split(const char* spec, std::string_view text, bool at_start = true) {
  auto p = PreTokenizer::from_json(Json::parse(spec));
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  if (!p.is_ok()) return {};
  std::vector<std::string_view> pieces;
  PieceArena arena;
  EXPECT_TRUE(p->split(text, at_start, pieces, arena).is_ok());
  return {pieces.begin(), pieces.end()};
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizerTest, SplitBehaviours) {
  auto with = [](const char* behavior, bool invert = false) {
    const std::string spec = fmt::format(R"({{"type": "Split", "pattern": {{"String": "-"}}, "behavior": "{}",
                                             "invert": {}}})",
                                         behavior, invert);
    return split(spec.c_str(), "the-final--countdown");
  };
  EXPECT_EQ(with("Removed"), (Pieces{"the", "final", "countdown"}));
  EXPECT_EQ(with("Isolated"), (Pieces{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(with("MergedWithPrevious"), (Pieces{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(with("MergedWithNext"), (Pieces{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(with("Contiguous"), (Pieces{"the", "-", "final", "--", "countdown"}));
  // invert: the words are the delimiters.
  EXPECT_EQ(with("Removed", true), (Pieces{"-", "-", "-"}));
  auto bad = PreTokenizer::from_json(
      Json::parse(R"({"type": "Split", "pattern": {"String": "-"}, "behavior": "Sideways", "invert": false})"));
  EXPECT_NE(bad.status().message().find("Sideways"), std::string::npos);
}

TEST(PreTokenizerTest, MetaspacePrependsAndSplits) {
  const char* always = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true})";
  EXPECT_EQ(split(always, "Hey friend!"), (Pieces{"▁Hey", "▁friend!"}));
  EXPECT_EQ(split(always, "Hey   friend!"), (Pieces{"▁Hey", "▁", "▁", "▁friend!"}));
  EXPECT_EQ(split(always, " Hey"), (Pieces{"▁Hey"}));  // a leading space is the ▁
  const char* first = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true})";
  EXPECT_EQ(split(first, "Hey friend!", /*at_start=*/true), (Pieces{"▁Hey", "▁friend!"}));
  EXPECT_EQ(split(first, "Hey friend!", /*at_start=*/false), (Pieces{"Hey", "▁friend!"}));
  const char* whole = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": false})";
  EXPECT_EQ(split(whole, "Hey friend!"), (Pieces{"Hey▁friend!"}));
}

TEST(PreTokenizerTest, DigitsAndByteLevelPrefix) {
  EXPECT_EQ(split(R"({"type": "Digits", "individual_digits": true})", "Hey 123 friend!"),
            (Pieces{"Hey ", "1", "2", "3", " friend!"}));
  EXPECT_EQ(split(R"({"type": "Digits", "individual_digits": false})", "Hey 123 friend!"),
            (Pieces{"Hey ", "123", " friend!"}));
  EXPECT_EQ(split(R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})", "Hello world"),
            (Pieces{" Hello", " world"}));
  EXPECT_EQ(split(R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": false})", "Hello world"),
            (Pieces{"Hello world"}));
  // No pre-tokenizer: the text is one piece.
  auto none = PreTokenizer::from_json(Json());
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->byte_level());
}

TEST(PreTokenizerTest, SequenceRefinesPiecesInOrder) {
  const char* seq = R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": false},
      {"type": "Digits", "individual_digits": true}]})";
  EXPECT_EQ(split(seq, "ab12  c3"), (Pieces{"ab", "1", "2", "c", "3"}));
  auto bert = PreTokenizer::from_json(
      Json::parse(R"({"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}]})"));
  EXPECT_EQ(bert.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(bert.status().message().find("Whitespace"), std::string::npos);
}

}  // namespace
}  // namespace baton::tokenizer

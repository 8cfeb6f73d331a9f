#include "common/json.h"

#include <string>

#include <gtest/gtest.h>

namespace baton {
namespace {

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(ParseJson, NumberOutOfRangeIsAnErrorNotAnException) {
  auto parsed = parse_json(R"({"temperature": 1e400})", "request body");
  ASSERT_FALSE(parsed.is_ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("request body"), std::string::npos);
  EXPECT_NE(parsed.status().message().find("1e400"), std::string::npos);
}

TEST(ParseJson, SyntaxErrorNamesWhat) {
  auto parsed = parse_json("{\"a\": ", "KV frame");
  ASSERT_FALSE(parsed.is_ok());
  EXPECT_NE(parsed.status().message().find("KV frame"), std::string::npos);
}

TEST(ParseJson, NestingLimit) {
  EXPECT_TRUE(parse_json(nested_arrays(kMaxJsonDepth)).is_ok());
  auto deep = parse_json(nested_arrays(kMaxJsonDepth + 1), "body");
  ASSERT_FALSE(deep.is_ok());
  EXPECT_NE(deep.status().message().find("nested deeper than 64"), std::string::npos);
  // 150,000 levels (292 KB) are refused without recursion.
  EXPECT_FALSE(parse_json(nested_arrays(150000)).is_ok());
  std::string objects;
  for (int i = 0; i < 100; ++i) objects += "{\"a\":";
  objects += "1" + std::string(100, '}');
  EXPECT_FALSE(parse_json(objects).is_ok());
}

TEST(ParseJson, BracketsInsideStringsDoNotCount) {
  std::string text = "{\"s\": \"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"}";
  auto parsed = parse_json(text);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
  EXPECT_EQ(parsed->at("s").get<std::string>().size(), 2001u);
}

TEST(ParseJson, InvalidUtf8IsAnError) {
  auto parsed = parse_json("{\"a\": \"\xff\xfe\"}");
  ASSERT_FALSE(parsed.is_ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
}

TEST(DumpJson, InvalidUtf8IsReplacedNotThrown) {
  Json j = {{"error", std::string("bad \xff\xfe bytes")}};
  std::string text;
  ASSERT_NO_THROW(text = dump_json(j));
  EXPECT_NE(text.find("bad "), std::string::npos);
  EXPECT_NE(text.find("\xEF\xBF\xBD"), std::string::npos);  // U+FFFD
  EXPECT_TRUE(parse_json(text).is_ok());
}

}  // namespace
}  // namespace baton

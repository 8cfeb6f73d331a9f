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

// Typed fields check a number against the type before converting it:
// nlohmann's get<int>() of 1e300 is undefined behaviour (UBSan aborts on it),
// and of 4294967297 it is 1. A peer's descriptor or a profile sends these.
TEST(JsonGet, NumbersOutOfTheTypesRangeAreErrors) {
  const Json j = parse_json(R"({"big": 1e300, "wide": 4294967297, "neg": -5, "frac": 2.5, "whole": 7.0,
                                "u64": 18446744073709551615, "min": -2147483648, "tiny": -1e-300})")
                     .value();
  EXPECT_NE(json_get<int>(j, "big", 0).status().message().find("field 'big' must be an integer in range"),
            std::string::npos);
  EXPECT_NE(json_get<int>(j, "wide", 0).status().message().find("field 'wide' (4294967297) is out of range"),
            std::string::npos);
  EXPECT_EQ(json_get<int64_t>(j, "wide", 0).value(), 4294967297);
  EXPECT_FALSE(json_get<uint32_t>(j, "neg", 0).is_ok());
  EXPECT_EQ(json_get<int>(j, "neg", 0).value(), -5);
  EXPECT_FALSE(json_get<int>(j, "frac", 0).is_ok());
  EXPECT_EQ(json_get<int>(j, "whole", 0).value(), 7);
  EXPECT_FALSE(json_get<int64_t>(j, "u64", 0).is_ok());
  EXPECT_EQ(json_get<uint64_t>(j, "u64", 0).value(), 18446744073709551615u);
  EXPECT_EQ(json_get<int>(j, "min", 0).value(), -2147483648);
  EXPECT_FALSE(json_get<int16_t>(j, "min", 0).is_ok());
  EXPECT_FALSE(json_get<float>(j, "big", 0.0f).is_ok());
  EXPECT_DOUBLE_EQ(json_get<double>(j, "big", 0.0).value(), 1e300);
  EXPECT_EQ(json_get<float>(j, "tiny", 1.0f).value(), -0.0f);
  EXPECT_EQ(json_get<int>(j, "absent", 3).value(), 3);
  EXPECT_FALSE(json_require<int>(j, "big").is_ok());
  EXPECT_FALSE(json_get<bool>(j, "neg", false).is_ok());
  EXPECT_FALSE(json_get<std::string>(j, "neg", "").is_ok());
}

}  // namespace
}  // namespace baton

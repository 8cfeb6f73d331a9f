// parse_safetensors_header on bytes in memory: corrupt headers that a file
// could carry are kDataLoss naming the problem, never a crash.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "model/safetensors_file.h"

namespace baton {
namespace {

// A whole file: 8-byte little-endian header length, header, data.
std::string file_with(const std::string& header, const std::string& data = "") {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  return out + header + data;
}

Result<std::map<std::string, TensorView>> parse(const std::string& file) {
  return parse_safetensors_header(reinterpret_cast<const unsigned char*>(file.data()), file.size(), "t.safetensors");
}

TEST(SafetensorsHeaderTest, ValidHeaderFromMemory) {
  const std::string file = file_with(
      R"({"__metadata__": {}, "w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}})",
      std::string(12, '\1'));
  auto tensors = parse(file);
  ASSERT_TRUE(tensors.is_ok()) << tensors.status().to_string();
  ASSERT_EQ(tensors->size(), 1u);
  const TensorView& w = tensors->at("w");
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(static_cast<const char*>(w.data), file.data() + file.size() - 12);
}

TEST(SafetensorsHeaderTest, DeepNestingIsDataLossNotAStackOverflow) {
  const std::string deep = R"({"w": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto tensors = parse(file_with(deep));
  ASSERT_FALSE(tensors.is_ok());
  EXPECT_EQ(tensors.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(tensors.status().message().find("nested deeper than 64"), std::string::npos) << tensors.status().message();
}

TEST(SafetensorsHeaderTest, NumbersOutOfRangeAreDataLoss) {
  auto huge = parse(file_with(R"({"w": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 4]}})", "abcd"));
  EXPECT_EQ(huge.status().code(), StatusCode::kDataLoss);
  // A dimension past int64 would turn negative in TensorView::shape.
  auto wide = parse(
      file_with(R"({"w": {"dtype": "F32", "shape": [0, 18446744073709551615], "data_offsets": [0, 0]}})"));
  ASSERT_FALSE(wide.is_ok());
  EXPECT_NE(wide.status().message().find("absurdly large shape"), std::string::npos) << wide.status().message();
}

TEST(SafetensorsHeaderTest, ShortOrLyingLengthIsDataLoss) {
  EXPECT_EQ(parse("1234567").status().code(), StatusCode::kDataLoss);
  std::string lying = file_with("{}");
  lying[5] = 1;  // header length 2^40 + 2
  auto r = parse(lying);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("beyond the file size"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace baton

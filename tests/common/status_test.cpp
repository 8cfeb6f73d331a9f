#include "common/status.h"

#include <gtest/gtest.h>

#include "common/float16.h"
#include "common/json.h"
#include "common/thread_pool.h"

namespace baton {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return invalid_argument("x must be positive, got {}", x);
  return x;
}

Status use_it(int x, int* out) {
  BATON_ASSIGN_OR_RETURN(*out, parse_positive(x));
  return Status::ok();
}

TEST(StatusTest, ResultCarriesValueOrError) {
  int v = 0;
  EXPECT_TRUE(use_it(3, &v).is_ok());
  EXPECT_EQ(v, 3);
  Status st = use_it(-1, &v);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.to_string(), "INVALID_ARGUMENT: x must be positive, got -1");
  EXPECT_EQ(st.with_context("reading").message(), "reading: x must be positive, got -1");
}

TEST(JsonTest, TypedFieldsNameTheProblem) {
  auto j = parse_json(R"({"a": 1, "b": "x"})");
  ASSERT_TRUE(j.is_ok());
  EXPECT_EQ(*json_get<int>(*j, "a", 0), 1);
  EXPECT_EQ(*json_get<int>(*j, "missing", 7), 7);
  auto bad = json_get<int>(*j, "b", 0);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("'b'"), std::string::npos);
  EXPECT_FALSE(json_require<int>(*j, "c").is_ok());
  EXPECT_FALSE(parse_json("{oops").is_ok());
}

TEST(Float16Test, RoundTrips) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 1e-5f, 3.14159f}) {
    EXPECT_NEAR(fp16_to_float(float_to_fp16(f)), f, std::abs(f) * 1e-3 + 1e-7);
    EXPECT_NEAR(bf16_to_float(float_to_bf16(f)), f, std::abs(f) * 1e-2 + 1e-7);
  }
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_fp16(1.0f), 0x3c00);
}

TEST(ThreadPoolTest, CoversRangeOnce) {
  ThreadPool pool(3);
  std::vector<int> hits(1000, 0);
  for (int rep = 0; rep < 50; ++rep) {
    pool.parallel_for(1000, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
  }
  for (int h : hits) EXPECT_EQ(h, 50);
}

}  // namespace
}  // namespace baton

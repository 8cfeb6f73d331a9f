#include "server/openai_response.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(DeltaChunkWriterTest, SameJsonAsTheGeneralPath) {
  for (ApiKind kind : {ApiKind::kCompletion, ApiKind::kChat}) {
    ResponseHeader h{kind, "cmpl-1\"x", "model \\ name", 1700000000};
    for (bool usage : {false, true}) {
      DeltaChunkWriter w(h, usage);
      for (std::string text : {std::string(""), std::string("hi \"there\"\n"), std::string("caf\xc3\xa9 \xe4\xb8\xad"),
                               std::string("bad \xff utf8"), std::string("\x01\t")}) {
        std::string fast = w.chunk(text);
        Json parsed = Json::parse(fast, nullptr, false);
        ASSERT_FALSE(parsed.is_discarded()) << fast;
        Json general = Json::parse(stream_chunk(h, text, nullptr, FinishReason::kNone, usage)
                                       .dump(-1, ' ', false, Json::error_handler_t::replace));
        EXPECT_EQ(parsed, general) << fast;
      }
    }
  }
}

}  // namespace
}  // namespace baton

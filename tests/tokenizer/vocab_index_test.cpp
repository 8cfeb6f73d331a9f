#include "tokenizer/vocab_index.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace baton::tokenizer {
namespace {

TEST(VocabIndexTest, FindsEveryIdByItsBytesAndNothingElse) {
  std::vector<std::string> vocab;
  for (int i = 0; i < 5000; ++i) vocab.push_back("tok" + std::to_string(i) + std::string(i % 40, 'x'));
  VocabIndex index;
  index.reset(vocab.size());
  for (int32_t id = 0; id < static_cast<int32_t>(vocab.size()); ++id) EXPECT_TRUE(index.insert(id, vocab));
  for (int32_t id = 0; id < static_cast<int32_t>(vocab.size()); ++id) EXPECT_EQ(index.find(vocab[id], vocab), id);
  EXPECT_EQ(index.find("tok5000", vocab), std::nullopt);
  EXPECT_EQ(index.find("", vocab), std::nullopt);
  EXPECT_EQ(index.find("tok1x", vocab), 1);
  EXPECT_EQ(index.find("tok1", vocab), std::nullopt);
}

TEST(VocabIndexTest, TheFirstIdKeepsBytesThatRepeat) {
  const std::vector<std::string> vocab = {"a", "b", "a", "", ""};
  VocabIndex index;
  index.reset(vocab.size());
  EXPECT_TRUE(index.insert(0, vocab));
  EXPECT_TRUE(index.insert(1, vocab));
  EXPECT_FALSE(index.insert(2, vocab));
  EXPECT_TRUE(index.insert(3, vocab));
  EXPECT_FALSE(index.insert(4, vocab));
  EXPECT_EQ(index.find("a", vocab), 0);
  EXPECT_EQ(index.find("", vocab), 3);
}

TEST(VocabIndexTest, GrowsPastItsReservationAndKeepsEveryId) {
  std::vector<std::string> vocab;
  for (int i = 0; i < 1000; ++i) vocab.push_back(std::to_string(i * 7919));
  VocabIndex index;
  index.reset(4);
  for (int32_t id = 0; id < 1000; ++id) ASSERT_TRUE(index.insert(id, vocab));
  for (int32_t id = 0; id < 1000; ++id) EXPECT_EQ(index.find(vocab[id], vocab), id);
  VocabIndex empty;
  EXPECT_EQ(empty.find("0", vocab), std::nullopt);
}

}  // namespace
}  // namespace baton::tokenizer

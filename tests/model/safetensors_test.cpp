// The safetensors reader against bad input, and the writer (single and sharded).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/float16.h"
#include "common/json.h"
#include "model/checkpoint.h"
#include "model/safetensors_file.h"
#include "model/safetensors_writer.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("baton_st_{}_{}", getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A raw file: 8-byte length, header text, then `data_bytes` zero bytes.
  std::string write_raw(const std::string& name, const std::string& header, size_t data_bytes,
                        int64_t len_override = -1) {
    std::string bytes(8, '\0');
    uint64_t len = len_override >= 0 ? static_cast<uint64_t>(len_override) : header.size();
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(len >> (8 * i));
    bytes += header;
    bytes.append(data_bytes, '\0');
    EXPECT_TRUE(write_file(path(name), bytes).is_ok());
    return path(name);
  }

  void expect_open_error(const std::string& file, StatusCode code, const std::vector<std::string>& needles) {
    auto r = SafetensorsFile::open(file);
    ASSERT_FALSE(r.is_ok()) << "opened a bad file";
    EXPECT_EQ(r.status().code(), code) << r.status().to_string();
    for (const auto& n : needles) {
      EXPECT_NE(r.status().message().find(n), std::string::npos) << "'" << n << "' not in: " << r.status().message();
    }
  }

  fs::path dir_;
};

const char* kGoodHeader = R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";

TEST_F(SafetensorsTest, ReadsAHandWrittenFile) {
  auto file = write_raw("ok.safetensors", kGoodHeader, 24);
  auto r = SafetensorsFile::open(file);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ((*r)->tensors().size(), 1u);
  const TensorView& t = (*r)->tensors().at("w");
  EXPECT_EQ(t.shape, std::vector<int64_t>({2, 3}));
  EXPECT_EQ(t.dtype, DType::kF32);
}

TEST_F(SafetensorsTest, TruncatedDataIsDataLossNamingFileAndTensor) {
  auto file = write_raw("trunc.safetensors", kGoodHeader, 20);
  expect_open_error(file, StatusCode::kDataLoss, {"trunc.safetensors", "'w'", "truncated"});
}

TEST_F(SafetensorsTest, TruncatedRealCheckpointIsDataLoss) {
  auto bytes = read_file(std::string(BATON_TEST_DATA) + "/fixtures/models/qwen3-tiny/model.safetensors");
  ASSERT_TRUE(bytes.is_ok());
  ASSERT_TRUE(write_file(path("cut.safetensors"), bytes->substr(0, bytes->size() - 100)).is_ok());
  expect_open_error(path("cut.safetensors"), StatusCode::kDataLoss, {"cut.safetensors", "truncated"});
  ASSERT_TRUE(write_file(path("tiny.safetensors"), bytes->substr(0, 5)).is_ok());
  expect_open_error(path("tiny.safetensors"), StatusCode::kDataLoss, {"tiny.safetensors", "truncated"});
  ASSERT_TRUE(write_file(path("half.safetensors"), bytes->substr(0, 200)).is_ok());
  expect_open_error(path("half.safetensors"), StatusCode::kDataLoss, {"half.safetensors", "header length"});
}

TEST_F(SafetensorsTest, CorruptHeaderJsonIsDataLoss) {
  auto file = write_raw("bad.safetensors", R"({"w":{"dtype":"F32",,,})", 24);
  expect_open_error(file, StatusCode::kDataLoss, {"bad.safetensors", "JSON"});
  file = write_raw("arr.safetensors", "[1,2,3]", 0);
  expect_open_error(file, StatusCode::kDataLoss, {"arr.safetensors", "object"});
  file = write_raw("noshape.safetensors", R"({"w":{"dtype":"F32","data_offsets":[0,24]}})", 24);
  expect_open_error(file, StatusCode::kDataLoss, {"'w'", "shape"});
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFileIsDataLoss) {
  auto file = write_raw("len.safetensors", kGoodHeader, 24, /*len_override=*/1ll << 40);
  expect_open_error(file, StatusCode::kDataLoss, {"len.safetensors", "header length"});
}

TEST_F(SafetensorsTest, OffsetsOutOfRangeAreDataLoss) {
  auto file = write_raw("off.safetensors", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[100,124]}})", 24);
  expect_open_error(file, StatusCode::kDataLoss, {"off.safetensors", "'w'", "[100, 124]"});
  file = write_raw("rev.safetensors", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}})", 24);
  expect_open_error(file, StatusCode::kDataLoss, {"'w'", "begin after end"});
  file = write_raw("neg.safetensors", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[-8,16]}})", 24);
  expect_open_error(file, StatusCode::kDataLoss, {"'w'", "data_offsets"});
}

TEST_F(SafetensorsTest, SizeNotMatchingShapeIsDataLoss) {
  auto file = write_raw("size.safetensors", R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]}})", 24);
  expect_open_error(file, StatusCode::kDataLoss, {"'w'", "24 bytes", "need 12"});
  file = write_raw("huge.safetensors", R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]}})",
                   24);
  expect_open_error(file, StatusCode::kDataLoss, {"'w'", "shape"});
}

TEST_F(SafetensorsTest, UnknownDtypeIsNamed) {
  auto file = write_raw("i64.safetensors", R"({"w":{"dtype":"I64","shape":[3],"data_offsets":[0,24]}})", 24);
  expect_open_error(file, StatusCode::kUnimplemented, {"i64.safetensors", "'w'", "I64"});
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  expect_open_error(path("nope.safetensors"), StatusCode::kNotFound, {"nope.safetensors"});
}

TEST_F(SafetensorsTest, WriterRoundTripsAllDtypes) {
  std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, -7.0f};
  std::vector<uint16_t> bf16, f16;
  for (float x : f32) {
    bf16.push_back(float_to_bf16(x));
    f16.push_back(float_to_fp16(x));
  }
  std::vector<TensorView> views = {{"a.f32", DType::kF32, {2, 3}, f32.data()},
                                   {"b.bf16", DType::kBF16, {6}, bf16.data()},
                                   {"c.f16", DType::kF16, {3, 2}, f16.data()},
                                   {"d.empty", DType::kF32, {0}, nullptr}};
  ASSERT_TRUE(write_safetensors(path("rt.safetensors"), views).is_ok());
  auto r = SafetensorsFile::open(path("rt.safetensors"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ((*r)->tensors().size(), 4u);
  for (const auto& v : views) {
    const TensorView& t = (*r)->tensors().at(v.name);
    EXPECT_EQ(t.dtype, v.dtype);
    EXPECT_EQ(t.shape, v.shape);
    if (v.num_bytes() > 0) EXPECT_EQ(0, std::memcmp(t.data, v.data, v.num_bytes())) << v.name;  // memcmp wants non-null
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype), 0u) << "data not aligned";
  }
  std::vector<float> bf16_back = (*r)->tensors().at("b.bf16").to_float();
  for (size_t i = 0; i < f32.size(); ++i) EXPECT_EQ(bf16_back[i], bf16_to_float(bf16[i]));
  EXPECT_FALSE(fs::exists(path("rt.safetensors.tmp")));
}

TEST_F(SafetensorsTest, WriterRefusesBadSpecs) {
  auto noop = [](size_t, std::span<std::byte>) { return Status::ok(); };
  Status st = write_safetensors(path("dup.safetensors"), {{"a", DType::kF32, {2}}, {"a", DType::kF32, {3}}}, noop);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("'a'"), std::string::npos);
  st = write_safetensors(path("neg.safetensors"), {{"b", DType::kF32, {-1}}}, noop);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("'b'"), std::string::npos);
  EXPECT_FALSE(fs::exists(path("dup.safetensors")));
  // A failing fill leaves no file behind.
  st = write_safetensors(path("fail.safetensors"), {{"c", DType::kF32, {4}}},
                         [](size_t, std::span<std::byte>) { return data_loss("fill failed"); });
  EXPECT_EQ(st.code(), StatusCode::kDataLoss);
  EXPECT_FALSE(fs::exists(path("fail.safetensors")));
  EXPECT_FALSE(fs::exists(path("fail.safetensors.tmp")));
}

TEST_F(SafetensorsTest, ShardedCheckpointReadsBackIdentical) {
  // Copy a fixture's weights into two shards with an index, then compare.
  const std::string src = std::string(BATON_TEST_DATA) + "/fixtures/models/qwen3-tiny";
  auto orig = Checkpoint::open(src);
  ASSERT_TRUE(orig.is_ok()) << orig.status().to_string();
  std::vector<TensorSpec> specs;
  std::vector<TensorView> views;
  uint64_t total = 0;
  for (const auto& name : (*orig)->tensor_names()) {
    auto t = (*orig)->tensor(name);
    ASSERT_TRUE(t.is_ok());
    views.push_back(*t);
    specs.push_back({t->name, t->dtype, t->shape});
    total += t->num_bytes();
  }
  const std::string out = path("sharded");
  Status st = write_checkpoint_weights(
      out, specs,
      [&](size_t i, std::span<std::byte> bytes) {
        std::memcpy(bytes.data(), views[i].data, bytes.size());
        return Status::ok();
      },
      /*max_shard_bytes=*/total - views.back().num_bytes());
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  fs::copy_file(src + "/config.json", out + "/config.json");
  EXPECT_TRUE(fs::exists(out + "/model-00001-of-00002.safetensors"));
  EXPECT_TRUE(fs::exists(out + "/model-00002-of-00002.safetensors"));
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
  auto index = read_json_file(out + "/model.safetensors.index.json");
  ASSERT_TRUE(index.is_ok());
  EXPECT_EQ((*index)["metadata"]["total_size"].get<uint64_t>(), total);

  auto back = Checkpoint::open(out);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ((*back)->tensor_names(), (*orig)->tensor_names());
  for (const auto& v : views) {
    auto t = (*back)->tensor(v.name, v.shape);
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    EXPECT_EQ(t->dtype, v.dtype);
    EXPECT_EQ(0, std::memcmp(t->data, v.data, v.num_bytes())) << v.name;
  }

  // An index that points a tensor at the wrong shard is corrupt.
  Json bad = *index;
  const std::string first = bad["weight_map"].begin().key();
  const std::string file = bad["weight_map"][first].get<std::string>();
  bad["weight_map"][first] = file == "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors"
                                                                        : "model-00001-of-00002.safetensors";
  ASSERT_TRUE(write_file(out + "/model.safetensors.index.json", bad.dump()).is_ok());
  auto r = Checkpoint::open(out);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find(first), std::string::npos) << r.status().message();

  // A missing shard is named.
  ASSERT_TRUE(write_file(out + "/model.safetensors.index.json", index->dump()).is_ok());
  fs::remove(out + "/model-00002-of-00002.safetensors");
  r = Checkpoint::open(out);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("model-00002-of-00002.safetensors"), std::string::npos);
}

TEST_F(SafetensorsTest, CheckpointWithCorruptWeightsFailsToOpen) {
  const std::string src = std::string(BATON_TEST_DATA) + "/fixtures/models/llama3-tiny";
  const std::string out = path("corrupt");
  fs::create_directories(out);
  fs::copy_file(src + "/config.json", out + "/config.json");
  auto bytes = read_file(src + "/model.safetensors");
  ASSERT_TRUE(bytes.is_ok());
  std::string b = *bytes;
  b[20] = '#';  // inside the header JSON
  ASSERT_TRUE(write_file(out + "/model.safetensors", b).is_ok());
  auto r = Checkpoint::open(out);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("model.safetensors"), std::string::npos);
}

TEST_F(SafetensorsTest, UnknownModelTypeInCheckpointIsNamed) {
  const std::string src = std::string(BATON_TEST_DATA) + "/fixtures/models/qwen2-tiny";
  const std::string out = path("unknown");
  fs::create_directories(out);
  auto cfg = read_json_file(src + "/config.json");
  ASSERT_TRUE(cfg.is_ok());
  (*cfg)["model_type"] = "mamba";
  ASSERT_TRUE(write_file(out + "/config.json", cfg->dump()).is_ok());
  fs::copy_file(src + "/model.safetensors", out + "/model.safetensors");
  auto r = Checkpoint::open(out);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("mamba"), std::string::npos);
  EXPECT_NE(r.status().message().find("config.json"), std::string::npos);
}

}  // namespace
}  // namespace baton

// FP8 checkpoints (model/fp8_quantization.h, model/fp8_checkpoint.h): the
// e4m3 codec, block and per-tensor quantisation, quantization_config, the
// writer/reader round trip on a fixture model, and the refusals of bad files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>

#include "common/json.h"
#include "model/checkpoint.h"
#include "model/fp8_checkpoint.h"
#include "model/safetensors_file.h"
#include "model/weight_names.h"
#include "support/temp_dir.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

const std::string kFixture = std::string(BATON_TEST_DATA) + "/fixtures/models/qwen3-moe-tiny";

TEST(Fp8E4m3, DecodesTheFormatsLandmarks) {
  EXPECT_EQ(fp8_e4m3_to_float(0x00), 0.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x7e), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0xfe), -448.0f);
  EXPECT_EQ(fp8_e4m3_to_float(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(fp8_e4m3_to_float(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_float(0x7f)));
}

TEST(Fp8E4m3, EveryCodeRoundTripsAndEncodingRoundsToNearestEvenAndSaturates) {
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f) continue;  // NaN
    const float v = fp8_e4m3_to_float(static_cast<uint8_t>(b));
    if (b == 0x80) continue;  // -0 encodes as 0x80 too, checked below
    EXPECT_EQ(float_to_fp8_e4m3(v), b) << "code " << b << " value " << v;
  }
  EXPECT_EQ(float_to_fp8_e4m3(-0.0f), 0x80);
  EXPECT_EQ(float_to_fp8_e4m3(1.0625f), 0x38);  // tie between 1 and 1.125: the even mantissa (1)
  EXPECT_EQ(float_to_fp8_e4m3(1.1875f), 0x3a);  // tie between 1.125 and 1.25: 1.25
  EXPECT_EQ(float_to_fp8_e4m3(1.1f), 0x39);
  EXPECT_EQ(float_to_fp8_e4m3(1e6f), 0x7e);  // saturates at 448
  EXPECT_EQ(float_to_fp8_e4m3(-1e6f), 0xfe);
  EXPECT_EQ(float_to_fp8_e4m3(std::ldexp(1.0f, -11)), 0x00);  // below half the smallest subnormal
  EXPECT_EQ(float_to_fp8_e4m3(std::nanf("")), 0x7f);
}

// Block scales over a ragged shape (blocks cut at the edges): every element
// comes back within half a step of e4m3 at its block's scale.
TEST(Fp8Quantize, BlockAndTensorScalesRoundTripWithinE4m3Precision) {
  const int64_t rows = 37, cols = 70;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(rows * cols);
  for (float& v : w) v = normal(rng);
  w[3] = 0.5f;  // an outlier: block (0, 0) gets a larger scale than its neighbours
  for (Fp8Scheme scheme : {Fp8Scheme::kBlock, Fp8Scheme::kTensor}) {
    Fp8Quantization q;
    q.scheme = scheme;
    q.block_rows = 16;
    q.block_cols = 32;
    const std::vector<int64_t> shape = q.scale_shape(rows, cols);
    EXPECT_EQ(shape, scheme == Fp8Scheme::kBlock ? std::vector<int64_t>({3, 3}) : std::vector<int64_t>{});
    std::vector<float> scales(scheme == Fp8Scheme::kBlock ? 9 : 1);
    std::vector<uint8_t> codes(w.size());
    quantize_fp8(q, w.data(), rows, cols, codes.data(), scales.data());
    std::vector<float> back(w.size());
    dequantize_fp8(q, codes.data(), scales.data(), rows, cols, back.data());
    if (scheme == Fp8Scheme::kBlock) {
      EXPECT_FLOAT_EQ(scales[0], 0.5f / 448.0f);
      EXPECT_LT(scales[1], scales[0]);
      EXPECT_EQ(back[3], 0.5f);  // the block's maximum is exact
    }
    double err2 = 0, ref2 = 0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const float scale = scheme == Fp8Scheme::kBlock ? scales[(r / 16) * 3 + c / 32] : scales[0];
        const float v = w[r * cols + c], d = back[r * cols + c];
        // Half a step: 2^-4 relative for normals, half the smallest subnormal (2^-10) absolute.
        EXPECT_LE(std::fabs(v - d), std::max(std::fabs(v) / 16.0f, std::ldexp(scale, -10)) * 1.0001f)
            << "element (" << r << ", " << c << ")";
        err2 += (v - d) * (v - d);
        ref2 += v * v;
      }
    }
    EXPECT_LT(std::sqrt(err2 / ref2), scheme == Fp8Scheme::kBlock ? 0.05 : 0.2);
  }
}

TEST(Fp8Config, ParsesWhatQwen3AndDeepSeekShipAndRefusesOthers) {
  auto parse = [](const char* text) { return parse_quantization_config(*parse_json(text, "test")); };
  auto block = parse(R"({"quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3",
                        "quant_method": "fp8", "weight_block_size": [128, 128]}})");
  ASSERT_TRUE(block.is_ok()) << block.status().to_string();
  ASSERT_TRUE(block->has_value());
  EXPECT_EQ((*block)->scheme, Fp8Scheme::kBlock);
  EXPECT_EQ((*block)->scale_name("a.weight"), "a.weight_scale_inv");
  auto tensor = parse(R"({"quantization_config": {"quant_method": "fp8", "activation_scheme": "static",
                         "ignored_layers": ["lm_head"], "modules_to_not_convert": ["mlp.gate"]}})");
  ASSERT_TRUE(tensor.is_ok()) << tensor.status().to_string();
  EXPECT_EQ((*tensor)->scheme, Fp8Scheme::kTensor);
  EXPECT_EQ((*tensor)->scale_name("a.weight"), "a.weight_scale");
  EXPECT_TRUE((*tensor)->is_not_converted("lm_head.weight"));
  EXPECT_TRUE((*tensor)->is_not_converted("model.layers.3.mlp.gate.weight"));
  EXPECT_FALSE((*tensor)->is_not_converted("model.layers.3.mlp.gate_proj.weight"));
  auto none = parse(R"({"model_type": "llama"})");
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->has_value());
  // The JSON form parses back to the same thing.
  auto again = Fp8Quantization::from_json((*block)->to_json());
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->scheme, Fp8Scheme::kBlock);
  EXPECT_EQ(again->block_rows, 128);

  auto fmt_bad = parse(R"({"quantization_config": {"quant_method": "fp8", "fmt": "e5m2"}})");
  ASSERT_FALSE(fmt_bad.is_ok());
  EXPECT_NE(fmt_bad.status().message().find("fmt"), std::string::npos) << fmt_bad.status().to_string();
  auto method_bad = parse(R"({"quantization_config": {"quant_method": "gptq"}})");
  ASSERT_FALSE(method_bad.is_ok());
  EXPECT_NE(method_bad.status().message().find("gptq"), std::string::npos);
  auto block_bad = parse(R"({"quantization_config": {"quant_method": "fp8", "weight_block_size": [128]}})");
  EXPECT_FALSE(block_bad.is_ok());
}

TEST(Fp8Quantize, OnlyProjectionsAreQuantisable) {
  EXPECT_TRUE(is_fp8_quantizable("model.layers.0.self_attn.q_proj.weight", {64, 64}));
  EXPECT_TRUE(is_fp8_quantizable("model.layers.0.self_attn.kv_a_proj_with_mqa.weight", {40, 64}));
  EXPECT_TRUE(is_fp8_quantizable("model.layers.1.mlp.experts.3.down_proj.weight", {64, 32}));
  EXPECT_FALSE(is_fp8_quantizable("model.layers.1.mlp.gate.weight", {8, 64}));  // the router
  EXPECT_FALSE(is_fp8_quantizable("model.embed_tokens.weight", {512, 64}));
  EXPECT_FALSE(is_fp8_quantizable("lm_head.weight", {512, 64}));
  EXPECT_FALSE(is_fp8_quantizable("model.layers.0.self_attn.q_norm.weight", {32}));
}

class Fp8CheckpointTest : public testing::TempDirTest {
 protected:
  std::string write_fp8(const std::string& name, Fp8Quantization q) {
    auto src = Checkpoint::open(kFixture);
    EXPECT_TRUE(src.is_ok()) << src.status().to_string();
    const std::string out = (dir_ / name).string();
    auto stats = write_fp8_checkpoint(**src, q, out);
    EXPECT_TRUE(stats.is_ok()) << stats.status().to_string();
    return out;
  }

  // A copy of the FP8 checkpoint `from` with its tensors and config edited.
  std::string variant(const std::string& from, const std::string& name,
                      const std::function<void(std::vector<TensorView>&)>& edit_tensors,
                      const std::function<void(Json&)>& edit_config) {
    const std::string out = (dir_ / name).string();
    fs::create_directories(out);
    auto file = SafetensorsFile::open(from + "/model.safetensors");
    EXPECT_TRUE(file.is_ok()) << file.status().to_string();
    std::vector<TensorView> tensors;
    for (const auto& [n, v] : (*file)->tensors()) tensors.push_back(v);
    if (edit_tensors) edit_tensors(tensors);
    EXPECT_TRUE(write_safetensors(out + "/model.safetensors", tensors).is_ok());
    auto config = read_json_file(from + "/config.json");
    EXPECT_TRUE(config.is_ok());
    if (edit_config) edit_config(*config);
    EXPECT_TRUE(write_file(out + "/config.json", config->dump(2)).is_ok());
    return out;
  }
};

// The writer stores projections as F8_E4M3 with F32 scales of the right
// shape, leaves embeddings, norms, the router and the LM head alone; the
// reader gives back every tensor of the source, in bf16, within e4m3 precision.
TEST_F(Fp8CheckpointTest, WriterAndReaderRoundTripBothSchemes) {
  auto src = Checkpoint::open(kFixture);
  ASSERT_TRUE(src.is_ok()) << src.status().to_string();
  for (Fp8Scheme scheme : {Fp8Scheme::kBlock, Fp8Scheme::kTensor}) {
    Fp8Quantization q;
    q.scheme = scheme;
    q.block_rows = 16;  // several blocks per tiny weight, ragged at the edges
    q.block_cols = 48;
    const std::string out = write_fp8(scheme == Fp8Scheme::kBlock ? "block" : "tensor", q);
    auto raw = SafetensorsFile::open(out + "/model.safetensors");
    ASSERT_TRUE(raw.is_ok()) << raw.status().to_string();
    const auto& stored = (*raw)->tensors();
    const TensorView& qproj = stored.at("model.layers.0.self_attn.q_proj.weight");
    EXPECT_EQ(qproj.dtype, DType::kF8E4M3);
    const TensorView& qscale = stored.at(q.scale_name("model.layers.0.self_attn.q_proj.weight"));
    EXPECT_EQ(qscale.dtype, DType::kF32);
    EXPECT_EQ(qscale.shape, q.scale_shape(qproj.shape[0], qproj.shape[1]));
    EXPECT_EQ(stored.at("model.layers.1.mlp.experts.0.up_proj.weight").dtype, DType::kF8E4M3);
    for (const char* kept : {"model.embed_tokens.weight", "lm_head.weight", "model.layers.0.mlp.gate.weight",
                             "model.norm.weight", "model.layers.0.self_attn.q_norm.weight"}) {
      ASSERT_TRUE(stored.count(kept)) << kept;
      EXPECT_EQ(stored.at(kept).dtype, DType::kBF16) << kept;
    }

    auto back = Checkpoint::open(out);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    ASSERT_TRUE(back->get()->config().quantization.has_value());
    EXPECT_EQ(back->get()->config().quantization->scheme, scheme);
    EXPECT_EQ((*back)->tensor_names(), (*src)->tensor_names());  // scales are not model tensors
    EXPECT_TRUE(validate_weights(**back).is_ok());
    for (const std::string& name : (*src)->tensor_names()) {
      const std::vector<float> a = (*src)->tensor(name)->to_float();
      auto t = (*back)->tensor(name);
      ASSERT_TRUE(t.is_ok());
      EXPECT_EQ(t->dtype, DType::kBF16) << name;
      const std::vector<float> b = t->to_float();
      double err2 = 0, ref2 = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        err2 += (a[i] - b[i]) * (a[i] - b[i]);
        ref2 += a[i] * a[i];
      }
      const bool quantised = is_fp8_quantizable(name, t->shape);
      if (quantised) {
        EXPECT_LT(std::sqrt(err2 / ref2), 0.08) << name;
        EXPECT_GT(err2, 0.0) << name << " came back exact: was it quantised?";
      } else {
        EXPECT_EQ(err2, 0.0) << name;
      }
    }
  }
}

TEST_F(Fp8CheckpointTest, RefusesBadFilesNamingTheTensor) {
  Fp8Quantization q;  // 128 x 128: every tiny weight has a [1, 1] scale
  const std::string good = write_fp8("good", q);
  ASSERT_TRUE(Checkpoint::open(good).is_ok());
  const std::string qproj = "model.layers.0.self_attn.q_proj.weight";
  auto expect_refused = [](const std::string& dir, const std::vector<std::string>& words) {
    auto ckpt = Checkpoint::open(dir);
    ASSERT_FALSE(ckpt.is_ok()) << dir << " loaded";
    for (const auto& w : words) {
      EXPECT_NE(ckpt.status().message().find(w), std::string::npos) << ckpt.status().to_string();
    }
  };
  auto drop = [](const std::string& name) {
    return
        [name](std::vector<TensorView>& t) { std::erase_if(t, [&](const TensorView& v) { return v.name == name; }); };
  };
  expect_refused(variant(good, "no_scale", drop(qproj + "_scale_inv"), nullptr), {qproj, "no scale"});

  static const float kTwoScales[2] = {1.0f, 1.0f};
  expect_refused(variant(
                     good, "bad_shape",
                     [&](std::vector<TensorView>& t) {
                       for (auto& v : t) {
                         if (v.name == qproj + "_scale_inv") {
                           v.shape = {2, 1};
                           v.data = kTwoScales;
                         }
                       }
                     },
                     nullptr),
                 {qproj, "[1, 1]", "[2, 1]"});
  expect_refused(variant(
                     good, "orphan",
                     [&](std::vector<TensorView>& t) {
                       TensorView s;
                       s.name = "lm_head.weight_scale_inv";
                       s.shape = {1, 1};
                       s.data = kTwoScales;
                       t.push_back(s);
                     },
                     nullptr),
                 {"lm_head.weight_scale_inv", "no F8_E4M3 weight"});
  expect_refused(variant(good, "no_config", nullptr, [](Json& c) { c.erase("quantization_config"); }),
                 {"F8_E4M3", "no quantization_config"});
  expect_refused(variant(good, "fmt", nullptr, [](Json& c) { c["quantization_config"]["fmt"] = "e5m2"; }),
                 {"fmt", "e5m2"});
  expect_refused(
      variant(good, "ignored", nullptr,
              [](Json& c) { c["quantization_config"]["modules_to_not_convert"] = Json::array({"self_attn.q_proj"}); }),
      {qproj, "not converted"});
  // A module listed as not converted and stored in bf16 is what the list means: it loads.
  auto listed_bf16 = variant(good, "lm_head_listed", nullptr, [](Json& c) {
    c["quantization_config"]["ignored_layers"] = Json::array({"lm_head", "mlp.gate"});
  });
  auto ok = Checkpoint::open(listed_bf16);
  EXPECT_TRUE(ok.is_ok()) << ok.status().to_string();
  // A bf16 checkpoint cannot be quantised twice.
  auto fp8 = Checkpoint::open(good);
  ASSERT_TRUE(fp8.is_ok());
  EXPECT_FALSE(write_fp8_checkpoint(**fp8, q, (dir_ / "twice").string()).is_ok());
  // Kept FP8 (the CUDA backend's open), the same checks refuse the same file.
  CheckpointOpenOptions keep;
  keep.dequantize_fp8 = false;
  auto kept = Checkpoint::open(variant(good, "no_scale_kept", drop(qproj + "_scale_inv"), nullptr), keep);
  ASSERT_FALSE(kept.is_ok());
  EXPECT_NE(kept.status().message().find("no scale"), std::string::npos) << kept.status().to_string();
}

// Opened with dequantize_fp8 false, the F8 weights stay F8 beside their
// scale tensors, bit for bit as stored; the rest is as a dequantising open's.
TEST_F(Fp8CheckpointTest, KeepsF8WeightsAndScalesWhenAsked) {
  Fp8Quantization q;
  const std::string out = write_fp8("kept", q);
  CheckpointOpenOptions keep;
  keep.dequantize_fp8 = false;
  auto kept = Checkpoint::open(out, keep);
  ASSERT_TRUE(kept.is_ok()) << kept.status().to_string();
  auto raw = SafetensorsFile::open(out + "/model.safetensors");
  ASSERT_TRUE(raw.is_ok()) << raw.status().to_string();
  const std::string qproj = "model.layers.0.self_attn.q_proj.weight";
  auto w = (*kept)->tensor(qproj);
  ASSERT_TRUE(w.is_ok()) << w.status().to_string();
  EXPECT_EQ(w->dtype, DType::kF8E4M3);
  const TensorView& stored = (*raw)->tensors().at(qproj);
  ASSERT_EQ(w->num_elements(), stored.num_elements());
  EXPECT_EQ(std::memcmp(w->data, stored.data, static_cast<size_t>(stored.num_elements())), 0);
  auto scale = (*kept)->tensor(q.scale_name(qproj));
  ASSERT_TRUE(scale.is_ok()) << scale.status().to_string();
  EXPECT_EQ(scale->shape, q.scale_shape(w->shape[0], w->shape[1]));
  auto norm = (*kept)->tensor("model.norm.weight");
  ASSERT_TRUE(norm.is_ok());
  EXPECT_EQ(norm->dtype, DType::kBF16);
  auto dequantised = Checkpoint::open(out);
  ASSERT_TRUE(dequantised.is_ok());
  EXPECT_EQ((*dequantised)->tensor(qproj)->dtype, DType::kBF16);
  EXPECT_FALSE((*dequantised)->has(q.scale_name(qproj)));
}

}  // namespace
}  // namespace baton

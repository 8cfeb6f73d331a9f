// Bad checkpoints and bad steps get clear errors from the CPU backend, never a
// crash; the backend factory makes "cpu" and explains what it cannot make.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "backend/backend_factory.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/step_builder.h"
#include "model/checkpoint.h"
#include "model/safetensors_writer.h"

namespace baton {
namespace {

namespace fs = std::filesystem;
using testing::TestSeq;

const std::string kLlama = std::string(BATON_TEST_DATA) + "/fixtures/models/llama3-tiny";

std::unique_ptr<Checkpoint> open_ckpt(const std::string& dir) {
  auto c = Checkpoint::open(dir);
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return c.is_ok() ? std::move(c).value() : nullptr;
}

// A copy of the llama fixture in a temp dir, with `edit` applied to its tensor list.
std::string edited_copy(const std::string& tag, const std::function<void(std::vector<TensorView>&)>& edit) {
  const fs::path dir = fs::temp_directory_path() /
                       ("baton_cpu_test_" + tag + "_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  fs::copy_file(kLlama + "/config.json", dir / "config.json");
  auto src = open_ckpt(kLlama);
  std::vector<TensorView> views;
  for (const std::string& name : src->tensor_names()) views.push_back(*src->tensor(name));
  edit(views);
  Status st = write_safetensors((dir / "model.safetensors").string(), views);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return dir.string();
}

// Either opening or converting the checkpoint fails, naming `needle`.
void expect_load_error(const std::string& dir, const std::string& needle) {
  auto c = Checkpoint::open(dir);
  std::string message;
  if (!c.is_ok()) {
    message = c.status().message();
  } else {
    auto b = CpuBackend::create(**c);
    ASSERT_FALSE(b.is_ok());
    message = b.status().message();
  }
  EXPECT_NE(message.find(needle), std::string::npos) << message;
  fs::remove_all(dir);
}

TEST(CpuBackendErrors, MissingTensorIsNamed) {
  const std::string name = "model.layers.1.mlp.down_proj.weight";
  expect_load_error(edited_copy("missing",
                                [&](std::vector<TensorView>& v) {
                                  std::erase_if(v, [&](const TensorView& t) { return t.name == name; });
                                }),
                    name);
}

TEST(CpuBackendErrors, WrongShapeIsNamed) {
  const std::string name = "model.layers.0.self_attn.q_proj.weight";
  expect_load_error(edited_copy("shape",
                                [&](std::vector<TensorView>& v) {
                                  for (TensorView& t : v)
                                    if (t.name == name) t.shape = {32, 128};  // same bytes as [64, 64]
                                }),
                    name);
}

class CpuBackendSteps : public ::testing::Test {
 protected:
  void SetUp() override {
    ckpt_ = open_ckpt(kLlama);
    ASSERT_NE(ckpt_, nullptr);
    auto b = CpuBackend::create(*ckpt_, BackendOptions{.num_threads = 1});
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    backend_ = std::move(b).value();
    seqs_.resize(1);
    seqs_[0].tokens = {5, 6, 7, 8, 9};
    seqs_[0].blocks = {3};
    seqs_[0].params.temperature = 0.0f;
  }
  StepInput good_step() { return testing::build_step(seqs_, {5}, 16); }
  void expect_error(const StepInput& in, StatusCode code, const std::string& needle) {
    Result<StepOutput> out = backend_->execute(in);
    ASSERT_FALSE(out.is_ok());
    EXPECT_EQ(out.status().code(), code) << out.status().to_string();
    EXPECT_NE(out.status().message().find(needle), std::string::npos) << out.status().message();
  }

  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<CpuBackend> backend_;
  std::vector<TestSeq> seqs_;
};

TEST_F(CpuBackendSteps, ExecuteBeforeInitKvCache) {
  expect_error(good_step(), StatusCode::kFailedPrecondition, "init_kv_cache");
}

TEST_F(CpuBackendSteps, KvCacheSizing) {
  // 2 layers x (K, V) x 16 rows x 2 kv heads x 16 dims x 4 bytes.
  EXPECT_EQ(backend_->kv_block_bytes(16), size_t{2 * 2 * 16 * 2 * 16 * 4});
  EXPECT_FALSE(backend_->init_kv_cache(0, 16).is_ok());
  EXPECT_FALSE(backend_->init_kv_cache(4, -1).is_ok());
  ASSERT_TRUE(backend_->init_kv_cache(8, 16).is_ok());
  KvMemory m = backend_->kv_memory();
  EXPECT_NE(m.base, nullptr);
  EXPECT_FALSE(m.on_device);
  EXPECT_EQ(m.layout.num_blocks, 8);
  EXPECT_EQ(m.layout.total_bytes(), 8 * backend_->kv_block_bytes(16));
  EXPECT_GT(backend_->available_kv_bytes(), 0u);
}

TEST_F(CpuBackendSteps, BadStepsAreClearErrors) {
  ASSERT_TRUE(backend_->init_kv_cache(8, 16).is_ok());
  ASSERT_TRUE(backend_->execute(good_step()).is_ok());

  StepInput in = good_step();
  in.token_ids[2] = 512;
  expect_error(in, StatusCode::kInvalidArgument, "outside the vocabulary");

  in = good_step();
  in.positions[4] = 5000;  // the model's context is 4096
  in.seq_lens[0] = 5001;
  expect_error(in, StatusCode::kOutOfRange, "context of 4096");

  in = good_step();
  in.slot_mapping[1] = 0;
  expect_error(in, StatusCode::kInvalidArgument, "block table says");

  in = good_step();
  in.block_tables[0] = 99;
  for (int t = 0; t < 5; ++t) in.slot_mapping[t] = 99 * 16 + t;
  expect_error(in, StatusCode::kInvalidArgument, "outside [0, 8)");

  in = good_step();
  in.query_start = {0, 9};
  expect_error(in, StatusCode::kInvalidArgument, "query_start");

  in = good_step();
  in.positions.pop_back();
  expect_error(in, StatusCode::kInvalidArgument, "positions");

  in = good_step();
  in.seq_lens[0] = 3;
  expect_error(in, StatusCode::kInvalidArgument, "seq_len");

  in = good_step();
  in.samples[0].params = nullptr;
  expect_error(in, StatusCode::kInvalidArgument, "sampling params");

  in = good_step();
  in.samples[0].seq_index = 1;
  expect_error(in, StatusCode::kInvalidArgument, "seq_index");

  in = good_step();
  in.block_tables = {};
  expect_error(in, StatusCode::kInvalidArgument, "block_tables");

  SamplingParams bad;
  bad.top_p = 2.0f;
  in = good_step();
  in.samples[0].params = &bad;
  expect_error(in, StatusCode::kInvalidArgument, "top_p");
}

TEST(BackendFactory, MakesCpuAndExplainsTheRest) {
  auto ckpt = open_ckpt(kLlama);
  ASSERT_NE(ckpt, nullptr);
  auto cpu = make_backend("cpu", *ckpt, BackendOptions{.num_threads = 1});
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  EXPECT_EQ((*cpu)->device_name(), "cpu");
  EXPECT_EQ((*cpu)->model_config().arch, Arch::kLlama);

  auto tpu = make_backend("tpu", *ckpt);
  ASSERT_FALSE(tpu.is_ok());
  EXPECT_EQ(tpu.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tpu.status().message().find("tpu"), std::string::npos);

  const auto names = registered_backends();
  if (std::find(names.begin(), names.end(), "cuda") == names.end()) {
    auto cuda = make_backend("cuda", *ckpt);
    ASSERT_FALSE(cuda.is_ok());
    EXPECT_EQ(cuda.status().code(), StatusCode::kUnimplemented);
  }

  // Registration routes a device name to its maker.
  register_backend("test-device", [](const Checkpoint&, const BackendOptions&) -> Result<std::unique_ptr<Backend>> {
    return unavailable("test-device maker was called");
  });
  auto td = make_backend("test-device", *ckpt);
  ASSERT_FALSE(td.is_ok());
  EXPECT_NE(td.status().message().find("maker was called"), std::string::npos);
}

}  // namespace
}  // namespace baton

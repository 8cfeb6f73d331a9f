// `baton generate` end to end through the binary.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "common/json.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

struct RunResult {
  int rc = -1;
  std::string out;
  std::string err;
};

RunResult run(const std::string& args) {
  static int counter = 0;
  const fs::path err_path = fs::temp_directory_path() /
                            ("baton_generate_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
  const std::string cmd = std::string(BATON_BINARY) + " generate " + args + " 2>" + err_path.string();
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_path);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  fs::remove(err_path);
  return r;
}

std::string model_dir(const std::string& name) { return std::string(BATON_TEST_DATA) + "/fixtures/models/" + name; }

// --prompt-ids' value: "1,2,3".
std::string ids_arg(const Json& ids) {
  std::string arg;
  for (const Json& t : ids) arg += (arg.empty() ? "" : ",") + std::to_string(t.get<int>());
  return arg;
}

std::vector<Json> json_lines(const std::string& out) {
  std::vector<Json> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    auto j = parse_json(line);
    EXPECT_TRUE(j.is_ok()) << line;
    if (j.is_ok()) lines.push_back(*j);
  }
  return lines;
}

TEST(GenerateCommand, PromptsFileGivesGoldenTokensInInputOrder) {
  const std::string model = model_dir("qwen3-tiny");
  auto golden = read_json_file(model + "/golden.json");
  ASSERT_TRUE(golden.is_ok());
  const fs::path file = fs::temp_directory_path() / ("prompts_" + std::to_string(getpid()) + ".jsonl");
  {
    std::ofstream f(file);
    for (const Json& p : (*golden)["prompts"]) {
      Json line = {{"prompt_ids", p["prompt_ids"]},
                   {"max_tokens", p["greedy_ids"].size()},
                   {"temperature", 0},
                   {"ignore_eos", true}};
      f << line.dump() << "\n";
    }
  }
  RunResult r = run("--model " + model + " --prompts-file " + file.string() +
                    " --json --max-num-batched-tokens 32 --num-kv-blocks 16 --num-threads 2");
  fs::remove(file);
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), (*golden)["prompts"].size());
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["token_ids"], (*golden)["prompts"][i]["greedy_ids"]) << "line " << i + 1;
    EXPECT_EQ(lines[i]["finish_reason"], "length");
    EXPECT_EQ(lines[i]["text"], "");  // the fixture has no tokenizer
  }
}

// The same 200-token prompt twice: with prefix caching the second computes
// only its last partial block; --no-prefix-caching recomputes it all.
TEST(GenerateCommand, NoPrefixCachingFlag) {
  const std::string model = model_dir("qwen2-tiny");
  auto golden = read_json_file(model + "/golden.json");
  ASSERT_TRUE(golden.is_ok());
  const Json& p = (*golden)["prompts"][5];
  ASSERT_EQ(p["prompt_ids"].size(), 200u);
  const fs::path file = fs::temp_directory_path() / ("twice_" + std::to_string(getpid()) + ".jsonl");
  {
    std::ofstream f(file);
    Json line = {{"prompt_ids", p["prompt_ids"]}, {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true}};
    f << line.dump() << "\n" << line.dump() << "\n";
  }
  for (bool caching : {true, false}) {
    RunResult r = run("--model " + model + " --prompts-file " + file.string() + " --json --max-num-batched-tokens 32" +
                      (caching ? "" : " --no-prefix-caching"));
    ASSERT_EQ(r.rc, 0) << r.err;
    auto lines = json_lines(r.out);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0]["num_cached_tokens"], 0);
    EXPECT_EQ(lines[1]["num_cached_tokens"], caching ? 192 : 0);
    for (const Json& l : lines) EXPECT_EQ(l["token_ids"], p["greedy_ids"]);
  }
  fs::remove(file);
}

TEST(GenerateCommand, PromptIdsJson) {
  const std::string model = model_dir("llama3-tiny");
  auto golden = read_json_file(model + "/golden.json");
  ASSERT_TRUE(golden.is_ok());
  const Json& p = (*golden)["prompts"][1];
  const std::string ids = ids_arg(p["prompt_ids"]);
  RunResult r = run("--model " + model + " --prompt-ids " + ids +
                    " --max-tokens 24 --temperature 0 --ignore-eos --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["token_ids"], p["greedy_ids"]);
}

TEST(GenerateCommand, ClearErrors) {
  const std::string model = model_dir("qwen3-tiny");
  RunResult r = run("--model " + model + " --prompt-ids 1,2,3,4,5,6,7,8,9,10 --max-tokens 10 --max-model-len 16");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("context"), std::string::npos) << r.err;
  r = run("--model " + model + " --prompt-ids 1,x,3");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("'x' is not a token id"), std::string::npos) << r.err;
  r = run("--model " + model + " --prompt-ids 1,99999");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("vocabulary"), std::string::npos) << r.err;
  r = run("--model " + model + " --prompt hello");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("tokenizer.json"), std::string::npos) << r.err;
  r = run("--model " + model + " --prompt ''");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("empty"), std::string::npos) << r.err;
  r = run("--model " + model);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("exactly one of"), std::string::npos) << r.err;
  r = run("--model /nonexistent/model --prompt-ids 1");
  EXPECT_NE(r.rc, 0);
  EXPECT_FALSE(r.err.empty());
  const fs::path file = fs::temp_directory_path() / ("bad_" + std::to_string(getpid()) + ".jsonl");
  {
    std::ofstream f(file);
    f << "{\"prompt_ids\": [1, 2]}\n{\"prompt_ids\": \"oops\"}\n";
  }
  r = run("--model " + model + " --prompts-file " + file.string());
  fs::remove(file);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
}

// --tensor-parallel-size: the golden greedy tokens at TP=2 and TP=4 (KV
// heads replicated), with the experts sliced or spread whole over the ranks
// (--enable-expert-parallel), and clear refusals of what cannot run.
TEST(GenerateCommand, TensorParallelSize) {
  const std::string model = model_dir("qwen3-moe-tiny");
  auto golden = read_json_file(model + "/golden.json");
  ASSERT_TRUE(golden.is_ok());
  const Json& p = (*golden)["prompts"][2];
  const std::string ids = ids_arg(p["prompt_ids"]);
  const std::string request = "--model " + model + " --prompt-ids " + ids + " --max-tokens " +
                              std::to_string(p["greedy_ids"].size()) + " --temperature 0 --ignore-eos --json";
  for (int tp : {2, 4}) {
    for (const std::string ep : {"", " --enable-expert-parallel"}) {
      RunResult r = run(request + " --tensor-parallel-size " + std::to_string(tp) + ep);
      ASSERT_EQ(r.rc, 0) << r.err;
      auto lines = json_lines(r.out);
      ASSERT_EQ(lines.size(), 1u);
      EXPECT_EQ(lines[0]["token_ids"], p["greedy_ids"]) << "TP=" << tp << ep;
    }
  }
  RunResult r = run(request + " --tensor-parallel-size 3");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("4 attention heads"), std::string::npos) << r.err;
  r = run(request + " --device cuda --tensor-parallel-size 2");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("--tensor-parallel-size 2"), std::string::npos) << r.err;
}

// --load-format dummy: a preset's random weights made in memory are the ones
// init-model writes (same seed, 0), so greedy tokens match; an FP8 copy of a
// fixture (init-model --quantize) generates too.
TEST(GenerateCommand, LoadFormatDummyAndFp8Checkpoints) {
  const fs::path dir = fs::temp_directory_path() / ("baton_gen_dummy_" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string written = (dir / "tiny").string();
  const std::string init = std::string(BATON_BINARY) + " init-model --preset tiny-qwen3 --out " + written +
                           " >/dev/null";
  ASSERT_EQ(std::system(init.c_str()), 0);
  const std::string request = " --prompt-ids 3,1,4,1,5 --max-tokens 6 --temperature 0 --ignore-eos --json";
  RunResult from_disk = run("--model " + written + request);
  ASSERT_EQ(from_disk.rc, 0) << from_disk.err;
  RunResult dummy = run("--load-format dummy --model tiny-qwen3" + request);
  ASSERT_EQ(dummy.rc, 0) << dummy.err;
  EXPECT_NE(dummy.err.find("--load-format dummy"), std::string::npos) << dummy.err;
  auto a = json_lines(from_disk.out), b = json_lines(dummy.out);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0]["token_ids"].size(), 6u);
  EXPECT_EQ(a[0]["token_ids"], b[0]["token_ids"]);
  RunResult bad = run("--load-format dummy --model no-such-model" + request);
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.err.find("neither a model folder nor a preset"), std::string::npos) << bad.err;

  const std::string fp8 = (dir / "fp8").string();
  const std::string quantize = std::string(BATON_BINARY) + " init-model --quantize fp8-block --from " +
                               model_dir("qwen3-moe-tiny") + " --out " + fp8 + " >/dev/null";
  ASSERT_EQ(std::system(quantize.c_str()), 0);
  RunResult fp8_run = run("--model " + fp8 + request);
  ASSERT_EQ(fp8_run.rc, 0) << fp8_run.err;
  EXPECT_EQ(json_lines(fp8_run.out).at(0)["token_ids"].size(), 6u);
  fs::remove_all(dir);
}

// Several prompts, plain: each answer under a line naming its prompt, the
// output ending with a newline (issue 22, finding 8).
TEST(GenerateCommand, PlainOutputNamesEachPromptAndEndsWithANewline) {
  const fs::path prompts = fs::temp_directory_path() / ("baton_gen_prompts_" + std::to_string(getpid()) + ".jsonl");
  std::ofstream(prompts) << "{\"prompt_ids\": [5, 6, 7]}\n{\"prompt_ids\": [1, 2, 3], \"max_tokens\": 2}\n";
  RunResult r = run("--prompts-file " + prompts.string() + " --model " + model_dir("qwen3-tiny") +
                    " --max-tokens 4 --temperature 0 --ignore-eos");
  fs::remove(prompts);
  ASSERT_EQ(r.rc, 0) << r.err;
  const size_t first = r.out.find("--- prompt 1: [5,6,7]\n");
  const size_t second = r.out.find("--- prompt 2: [1,2,3]\n");
  EXPECT_EQ(first, 0u) << r.out;
  ASSERT_NE(second, std::string::npos) << r.out;
  EXPECT_GT(second, first) << r.out;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  // One prompt: the answer alone.
  RunResult one = run("--prompt-ids 5,6,7 --model " + model_dir("qwen3-tiny") + " --max-tokens 4 --temperature 0");
  ASSERT_EQ(one.rc, 0) << one.err;
  EXPECT_EQ(one.out.find("--- prompt"), std::string::npos) << one.out;
  ASSERT_FALSE(one.out.empty());
  EXPECT_EQ(one.out.back(), '\n');
}

// A random-weight model with the real Qwen3 tokenizer: text in, text out,
// stop strings, and invalid UTF-8 refused.
TEST(GenerateCommand, TextPromptsThroughTheTokenizer) {
  const fs::path dir = fs::temp_directory_path() / ("baton_gen_model_" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string init = std::string(BATON_BINARY) + " init-model --arch qwen3 --preset default --out " +
                           dir.string() + " --seed 3 > /dev/null 2>&1";
  ASSERT_EQ(std::system(init.c_str()), 0) << "init-model failed";
  RunResult r = run("--model " + dir.string() +
                    " --prompt 'The capital of France is' --max-tokens 6 "
                    "--temperature 0 --ignore-eos --json --num-threads 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["token_ids"].size(), 6u);
  const std::string text = lines[0]["text"].get<std::string>();
  EXPECT_FALSE(text.empty());
  // Plain output prints the same text.
  RunResult plain = run("--model " + dir.string() +
                        " --prompt 'The capital of France is' --max-tokens 6 "
                        "--temperature 0 --ignore-eos --num-threads 2");
  ASSERT_EQ(plain.rc, 0) << plain.err;
  EXPECT_EQ(plain.out, text + (text.back() == '\n' ? "" : "\n"));
  // The checkpoint came from init-model: stderr says its weights are random (issue 22, finding 1).
  EXPECT_NE(plain.err.find("holds RANDOM weights"), std::string::npos) << plain.err;
  // Invalid UTF-8 in the prompt is a clear error.
  RunResult bad = run("--model " + dir.string() + " --prompt \"$(printf 'abc\\377')\" --max-tokens 2");
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.err.find("UTF-8"), std::string::npos) << bad.err;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace baton

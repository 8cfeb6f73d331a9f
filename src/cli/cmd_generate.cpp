// `baton generate`: offline generation on one engine. One prompt (--prompt
// TEXT or --prompt-ids 1,2,3) or a JSONL file of them (--prompts-file, all
// submitted at once; one output line per input line, in input order).
// Default temperature is 1.0 (vLLM's); --temperature 0 is greedy. Plain
// output with several prompts puts a "--- prompt N: ..." line before each
// answer; every answer ends with a newline. A checkpoint with random weights
// (cli/random_weights.h) gets a note on stderr.
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>

#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/random_weights.h"
#include "common/json.h"

namespace baton::cli {
namespace {

struct GenerateArgs {
  EngineFlags engine;
  std::string prompt;
  std::string prompt_ids;
  std::string prompts_file;
  int max_tokens = 16;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;
  int64_t seed = -1;
  bool ignore_eos = false;
  bool json = false;
};

// One prompt to run, with its own settings.
struct Item {
  std::string text;
  bool has_text = false;
  std::vector<int32_t> ids;
  GenerationRequest request;
};

Result<std::vector<int32_t>> parse_id_list(const std::string& s) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string part = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    // trim spaces
    part.erase(0, part.find_first_not_of(" \t"));
    part.erase(part.find_last_not_of(" \t") + 1);
    if (part.empty()) return invalid_argument("--prompt-ids: empty entry in '{}'", s);
    try {
      size_t used = 0;
      long long v = std::stoll(part, &used);
      if (used != part.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(part);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      return invalid_argument("--prompt-ids: '{}' is not a token id", part);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

GenerationRequest base_request(const GenerateArgs& a) {
  GenerationRequest g;
  g.max_tokens = a.max_tokens;
  g.sampling.temperature = a.temperature;
  g.sampling.top_p = a.top_p;
  g.sampling.top_k = a.top_k;
  if (a.seed >= 0) g.sampling.seed = static_cast<uint64_t>(a.seed);
  g.ignore_eos = a.ignore_eos;
  return g;
}

Result<Item> parse_line(const std::string& line, const GenerateArgs& a) {
  BATON_ASSIGN_OR_RETURN(Json j, parse_json(line, "prompts-file line"));
  if (!j.is_object()) return invalid_argument("expected a JSON object");
  Item it;
  it.request = base_request(a);
  const bool has_prompt = j.contains("prompt") && !j["prompt"].is_null();
  const bool has_ids = j.contains("prompt_ids") && !j["prompt_ids"].is_null();
  if (has_prompt == has_ids) return invalid_argument("give exactly one of \"prompt\" and \"prompt_ids\"");
  if (has_prompt) {
    BATON_ASSIGN_OR_RETURN(it.text, json_require<std::string>(j, "prompt"));
    it.has_text = true;
  } else {
    BATON_ASSIGN_OR_RETURN(std::vector<int64_t> ids, json_require<std::vector<int64_t>>(j, "prompt_ids"));
    for (int64_t v : ids) {
      if (v < 0 || v > INT32_MAX) return invalid_argument("prompt_ids: {} is not a token id", v);
      it.ids.push_back(static_cast<int32_t>(v));
    }
  }
  GenerationRequest& g = it.request;
  BATON_ASSIGN_OR_RETURN(g.max_tokens, json_get<int>(j, "max_tokens", g.max_tokens));
  BATON_ASSIGN_OR_RETURN(g.min_tokens, json_get<int>(j, "min_tokens", g.min_tokens));
  BATON_ASSIGN_OR_RETURN(g.sampling.temperature, json_get<float>(j, "temperature", g.sampling.temperature));
  BATON_ASSIGN_OR_RETURN(g.sampling.top_p, json_get<float>(j, "top_p", g.sampling.top_p));
  BATON_ASSIGN_OR_RETURN(g.sampling.top_k, json_get<int>(j, "top_k", g.sampling.top_k));
  BATON_ASSIGN_OR_RETURN(g.ignore_eos, json_get<bool>(j, "ignore_eos", g.ignore_eos));
  BATON_ASSIGN_OR_RETURN(g.stop, json_get<std::vector<std::string>>(j, "stop", g.stop));
  if (j.contains("seed") && !j["seed"].is_null()) {
    BATON_ASSIGN_OR_RETURN(int64_t seed, json_require<int64_t>(j, "seed"));
    if (seed < 0) return invalid_argument("seed must not be negative, got {}", seed);
    g.sampling.seed = static_cast<uint64_t>(seed);
  }
  return it;
}

Result<std::vector<Item>> collect_items(const GenerateArgs& a) {
  const int num_sources = !a.prompt.empty() + !a.prompt_ids.empty() + !a.prompts_file.empty();
  if (num_sources != 1) {
    return invalid_argument("give exactly one of --prompt, --prompt-ids and --prompts-file");
  }
  std::vector<Item> items;
  if (!a.prompts_file.empty()) {
    std::ifstream in(a.prompts_file);
    if (!in) return not_found("cannot open --prompts-file {}", a.prompts_file);
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto it = parse_line(line, a);
      if (!it.is_ok()) return it.status().with_context(fmt::format("{} line {}", a.prompts_file, line_no));
      items.push_back(std::move(it).value());
    }
    if (items.empty()) return invalid_argument("--prompts-file {} holds no prompt", a.prompts_file);
    return items;
  }
  Item it;
  it.request = base_request(a);
  if (!a.prompt.empty()) {
    it.text = a.prompt;
    it.has_text = true;
  } else {
    BATON_ASSIGN_OR_RETURN(it.ids, parse_id_list(a.prompt_ids));
  }
  items.push_back(std::move(it));
  return items;
}

// The header line before answer i in plain output: the prompt, shortened.
std::string prompt_header(size_t i, const Item& it) {
  constexpr size_t kShown = 60;
  std::string shown;
  if (it.has_text) {
    shown = Json(it.text.size() > kShown ? it.text.substr(0, kShown) + "..." : it.text)
                .dump(-1, ' ', false, Json::error_handler_t::replace);
  } else {
    size_t k = 0;
    for (; k < it.ids.size() && shown.size() < kShown; ++k) shown += (k ? "," : "") + std::to_string(it.ids[k]);
    shown = "[" + shown + (k < it.ids.size() ? ",...]" : "]");
  }
  return fmt::format("--- prompt {}: {}", i + 1, shown);
}

struct Result1 {
  std::vector<int32_t> ids;
  std::string text;
  FinishReason reason = FinishReason::kNone;
  std::string error;
  int num_prompt_tokens = 0;
  int num_cached_tokens = 0;
  bool done = false;
};

int run_generate(const GenerateArgs& a) {
  auto items = collect_items(a);
  if (!items.is_ok()) {
    std::cerr << "error: " << items.status().message() << "\n";
    return 1;
  }
  auto loaded = build_engine(a.engine);
  if (!loaded.is_ok()) {
    std::cerr << "error: " << loaded.status().message() << "\n";
    return 1;
  }
  LoadedEngine& le = **loaded;
  if (auto note = random_weights_note(le.model_dir)) std::cerr << *note << std::endl;
  // Tokenize every text prompt first: a bad one stops everything before any work.
  for (size_t i = 0; i < items->size(); ++i) {
    Item& it = (*items)[i];
    if (it.has_text) {
      if (!le.tokenizer) {
        std::cerr << "error: " << le.model_dir
                  << " has no tokenizer.json, so text prompts cannot be encoded; use --prompt-ids\n";
        return 1;
      }
      auto ids = le.tokenizer->encode(it.text);
      if (!ids.is_ok()) {
        std::cerr << "error: prompt " << i + 1 << ": " << ids.status().message() << "\n";
        return 1;
      }
      it.ids = std::move(ids).value();
      const int64_t vocab_size = le.checkpoint->config().vocab_size;
      for (int32_t id : it.ids) {
        if (id < vocab_size) continue;
        std::cerr << "error: prompt " << i + 1 << ": the tokenizer wrote token " << id << ", past the model's "
                  << vocab_size << "-token vocabulary (a tiny-* preset?): give token ids below " << vocab_size
                  << " with --prompt-ids\n";
        return 1;
      }
    }
    it.request.prompt_ids = it.ids;
    it.request.request_id = "gen-" + std::to_string(i);
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Result1> results(items->size());
  size_t num_done = 0;
  for (size_t i = 0; i < items->size(); ++i) {
    Status st = le.engine->submit(std::move((*items)[i].request), [&, i](RequestOutput o) {
      std::lock_guard<std::mutex> lock(mu);
      Result1& r = results[i];
      r.ids.insert(r.ids.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      r.text += o.new_text;
      if (o.finished) {
        r.reason = o.finish_reason;
        r.error = o.error;
        r.num_prompt_tokens = o.num_prompt_tokens;
        r.num_cached_tokens = o.num_cached_tokens;
        r.done = true;
        ++num_done;
        cv.notify_all();
      }
    });
    if (!st.is_ok()) {
      std::cerr << "error: prompt " << i + 1 << ": " << st.message() << "\n";
      le.engine->shutdown();
      return 1;
    }
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return num_done == results.size(); });
  }
  le.engine->shutdown(AsyncEngine::ShutdownMode::kDrain);
  int rc = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const Result1& r = results[i];
    if (!r.error.empty()) {
      std::cerr << "error: prompt " << i + 1 << ": " << r.error << "\n";
      rc = 1;
    }
    if (a.json) {
      Json j;
      j["token_ids"] = r.ids;
      j["text"] = r.text;
      j["finish_reason"] = finish_reason_name(r.reason);
      j["num_prompt_tokens"] = r.num_prompt_tokens;
      j["num_cached_tokens"] = r.num_cached_tokens;
      if (!r.error.empty()) j["error"] = r.error;
      std::cout << j.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
      continue;
    }
    if (results.size() > 1) std::cout << prompt_header(i, (*items)[i]) << "\n";
    if (le.tokenizer) {
      std::cout << r.text << (r.text.empty() || r.text.back() != '\n' ? "\n" : "");
    } else {
      for (size_t k = 0; k < r.ids.size(); ++k) std::cout << (k ? " " : "") << r.ids[k];
      std::cout << "\n";
    }
  }
  std::cout.flush();
  return rc;
}

RunFn setup(CLI::App& sub) {
  auto args = std::make_shared<GenerateArgs>();
  sub.add_option("--prompt", args->prompt, "Prompt text (encoded with the model's tokenizer)");
  sub.add_option("--prompt-ids", args->prompt_ids, "Prompt token ids, comma-separated: 1,2,3");
  sub.add_option("--prompts-file", args->prompts_file,
                 "JSONL file: {\"prompt\": TEXT} or {\"prompt_ids\": [...]} per line, optional "
                 "max_tokens, temperature, top_p, top_k, seed, ignore_eos, min_tokens, stop");
  sub.add_option("--max-tokens", args->max_tokens, "Output tokens at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--temperature", args->temperature, "Sampling temperature; 0 = greedy")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--top-p", args->top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  sub.add_option("--top-k", args->top_k, "Top-k sampling (0 = off)")->capture_default_str();
  sub.add_flag("--ignore-eos", args->ignore_eos, "Keep generating past EOS tokens");
  sub.add_flag("--json", args->json,
               "Print one JSON object per prompt: token_ids (prompt excluded), text, finish_reason");
  add_engine_flags(sub, args->engine);
  // --seed (an engine flag) also seeds each request that names no seed of its
  // own, so `--seed S` gives the same tokens as a request with seed S.
  CLI::Option* seed = sub.get_option("--seed");
  CLI::Option* prompt = sub.get_option("--prompt");
  CLI::Option* prompt_ids = sub.get_option("--prompt-ids");
  return [args, seed, prompt, prompt_ids] {
    if (seed->count() > 0) args->seed = static_cast<int64_t>(args->engine.engine.seed);
    if ((prompt->count() > 0 && args->prompt.empty()) || (prompt_ids->count() > 0 && args->prompt_ids.empty())) {
      std::cerr << "error: the prompt is empty\n";
      return 1;
    }
    return run_generate(*args);
  };
}

}  // namespace

CommandSpec generate_command() { return {"generate", "Generate tokens for prompts on one engine", &setup}; }

}  // namespace baton::cli

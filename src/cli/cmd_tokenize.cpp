// `baton tokenize`: text -> ids, ids -> text (--ids), or a chat request
// rendered through the model's chat template (--chat, --messages), with a
// tokenizer folder (or a model folder holding tokenizer.json).
#include <charconv>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/command.h"
#include "common/json.h"
#include "model/default_model.h"
#include "tokenizer/tokenizer.h"

namespace {

struct TokenizeOptions {
  std::string tokenizer;
  std::string text;
  std::string ids;
  std::string messages;
  std::string chat;
  std::string enable_thinking;
  bool no_generation_prompt = false;
  bool json = false;
  bool no_special = false;
};

int fail(const baton::Status& st) {
  std::cerr << "baton tokenize: " << st.to_string() << "\n";
  return 1;
}

// "1, 2,3" -> {1, 2, 3}; a bad item is an error naming it.
baton::Result<std::vector<int32_t>> parse_ids(const std::string& list) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(pos, comma - pos);
    const size_t b = item.find_first_not_of(" \t");
    const size_t e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? std::string() : item.substr(b, e - b + 1);
    int32_t id = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || id < 0) {
      return baton::invalid_argument("--ids: '{}' is not a token id (expected comma-separated integers >= 0)", item);
    }
    ids.push_back(id);
    pos = comma + 1;
  }
  return ids;
}

// The chat template of the folder `--tokenizer` names (it may name
// tokenizer.json itself).
baton::Result<baton::ChatTemplate> load_template(const std::string& tokenizer_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path dir = tokenizer_path;
  if (!fs::is_directory(dir, ec)) dir = dir.parent_path();
  return baton::ChatTemplate::load(dir.string());
}

// A --chat request file: {"messages", "tools", "add_generation_prompt",
// "chat_template_kwargs"}, as a chat completion request carries them.
baton::Status read_chat_request(const std::string& path, std::vector<baton::ChatMessage>& messages,
                                baton::ChatTemplateOptions& options) {
  using namespace baton;
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    BATON_ASSIGN_OR_RETURN(text, read_file(path));
  }
  BATON_ASSIGN_OR_RETURN(OrderedJson request, parse_ordered_json(text, "--chat file"));
  if (!request.is_object()) return invalid_argument("--chat file: expected a JSON object with 'messages'");
  auto m = request.find("messages");
  if (m == request.end()) return invalid_argument("--chat file: no 'messages'");
  BATON_ASSIGN_OR_RETURN(messages, parse_chat_messages(*m));
  auto tools = request.find("tools");
  if (tools != request.end()) options.tools = *tools;
  auto kwargs = request.find("chat_template_kwargs");
  if (kwargs != request.end()) options.chat_template_kwargs = *kwargs;
  auto gen = request.find("add_generation_prompt");
  if (gen != request.end() && !gen->is_null()) {
    if (!gen->is_boolean()) return invalid_argument("--chat file: 'add_generation_prompt' must be true or false");
    options.add_generation_prompt = gen->get<bool>();
  }
  return Status::ok();
}

// --chat / --messages: renders the chat template, then encodes the prompt as
// apply_chat_template does (no post-processor tokens: the template has them).
int run_chat(const baton::Tokenizer& tok, const std::string& tokenizer_path, const TokenizeOptions& o) {
  using namespace baton;
  std::vector<ChatMessage> messages;
  ChatTemplateOptions options;
  if (!o.chat.empty()) {
    if (Status st = read_chat_request(o.chat, messages, options); !st.is_ok()) return fail(st);
  } else {
    auto parsed = parse_ordered_json(o.messages, "--messages");
    if (!parsed.is_ok()) return fail(parsed.status());
    auto m = parse_chat_messages(*parsed);
    if (!m.is_ok()) return fail(m.status());
    messages = std::move(*m);
  }
  if (o.no_generation_prompt) options.add_generation_prompt = false;
  if (o.enable_thinking == "true") {
    options.enable_thinking = true;
  } else if (o.enable_thinking == "false") {
    options.enable_thinking = false;
  } else if (!o.enable_thinking.empty()) {
    return fail(invalid_argument("--enable-thinking must be true or false (got '{}')", o.enable_thinking));
  }
  auto tmpl = load_template(tokenizer_path);
  if (!tmpl.is_ok()) return fail(tmpl.status());
  auto prompt = tmpl->render(messages, options);
  if (!prompt.is_ok()) return fail(prompt.status());
  auto ids = tok.encode(*prompt, /*add_special_tokens=*/false);
  if (!ids.is_ok()) return fail(ids.status());
  if (o.json) {
    // --messages printed "prompt" before --chat existed; --chat prints "text".
    std::cout << dump_json(Json{{o.chat.empty() ? "prompt" : "text", *prompt}, {"ids", *ids}}) << "\n";
  } else {
    std::cout << *prompt << "\n";
  }
  return 0;
}

int run(const TokenizeOptions& o, bool have_text, bool have_ids, bool have_messages, bool have_chat) {
  using namespace baton;
  if (int(have_text) + int(have_ids) + int(have_messages) + int(have_chat) != 1) {
    return fail(invalid_argument("give exactly one of --text TEXT, --ids 1,2,3, --chat FILE or --messages JSON"));
  }
  const std::string dir = o.tokenizer.empty() ? default_model_dir() : o.tokenizer;
  auto tok = Tokenizer::load(dir);
  if (!tok.is_ok()) {
    if (o.tokenizer.empty()) {
      return fail(tok.status().with_context(
          "no --tokenizer given, so using the default model (run scripts/build.sh to create it)"));
    }
    return fail(tok.status());
  }
  if (have_messages || have_chat) return run_chat(**tok, dir, o);
  if (have_ids) {
    auto ids = parse_ids(o.ids);
    if (!ids.is_ok()) return fail(ids.status());
    for (int32_t id : *ids) {
      if (id >= (*tok)->vocab_size()) {
        return fail(invalid_argument("--ids: token id {} is out of range (vocab_size {})", id, (*tok)->vocab_size()));
      }
    }
    auto text = (*tok)->decode(*ids, /*skip_special_tokens=*/o.no_special);
    if (!text.is_ok()) return fail(text.status());
    if (o.json) {
      std::cout << Json{{"text", *text}}.dump() << "\n";
    } else {
      std::cout << *text << "\n";
    }
    return 0;
  }
  std::string text = o.text;
  if (text == "-") text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  auto ids = (*tok)->encode(text, /*add_special_tokens=*/!o.no_special);
  if (!ids.is_ok()) return fail(ids.status());
  if (o.json) {
    std::cout << Json{{"ids", *ids}}.dump() << "\n";
  } else {
    std::cout << fmt::format("{}", fmt::join(*ids, ",")) << "\n";
  }
  return 0;
}

baton::cli::RunFn setup(CLI::App& sub) {
  auto o = std::make_shared<TokenizeOptions>();
  sub.add_option("--tokenizer", o->tokenizer,
                 "Folder with tokenizer.json (and tokenizer_config.json), e.g. a model folder "
                 "(default: the embedded default model)");
  auto* text = sub.add_option("--text", o->text, "Text to encode ('-' reads standard input)");
  auto* ids = sub.add_option("--ids", o->ids, "Comma-separated token ids to decode, e.g. 9707,1879");
  auto* messages = sub.add_option(
      "--messages", o->messages,
      "Chat messages as JSON ([{\"role\": \"user\", \"content\": \"Hi\"}]): print the prompt the chat template renders");
  auto* chat = sub.add_option(
      "--chat", o->chat,
      "A chat request file ('-' reads standard input): {\"messages\": [...], \"tools\": [...], "
      "\"add_generation_prompt\": true, \"chat_template_kwargs\": {...}}: print the prompt the model's chat "
      "template renders, and its ids");
  sub.add_option("--enable-thinking", o->enable_thinking,
                 "With --chat or --messages: true or false (Qwen3's thinking switch)");
  sub.add_flag("--no-generation-prompt", o->no_generation_prompt,
               "With --chat or --messages: leave out the assistant prefix");
  sub.add_flag("--json", o->json,
               "Print JSON: {\"ids\": [...]} when encoding, {\"text\": ...} when decoding, "
               "{\"text\": ..., \"ids\": [...]} with --chat, {\"prompt\": ..., \"ids\": [...]} with --messages");
  sub.add_flag("--no-special", o->no_special,
               "Encode without the post-processor's special tokens (e.g. a BOS); decode skipping special tokens");
  return [o, text, ids, messages, chat] {
    return run(*o, text->count() > 0, ids->count() > 0, messages->count() > 0, chat->count() > 0);
  };
}

}  // namespace

baton::cli::CommandSpec baton::cli::tokenize_command() {
  return {"tokenize", "Encode text to token ids, or decode ids to text", &setup};
}

// A Jinja2 template parsed once and rendered many times: the engine behind
// chat templates (a subset of Jinja2 covering what Hugging Face chat
// templates use; see docs/chat-templates.md). Whitespace is handled as
// transformers configures jinja2: trim_blocks and lstrip_blocks on.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/value.h"

namespace baton::jinja {

class Template {
 public:
  // A syntax error or an unsupported construct is kInvalidArgument naming the
  // line. Never throws.
  static Result<Template> parse(std::string_view source);

  // Renders with `globals` as the template's variables. A raise_exception()
  // in the template is kInvalidArgument carrying exactly its message; any
  // other failure (an undefined variable's attribute, a bad operand, a limit
  // reached) is kInvalidArgument naming the line. Never throws.
  Result<std::string> render(const std::vector<std::pair<std::string_view, Value>>& globals,
                             const RenderLimits& limits = {}) const;

 private:
  explicit Template(std::shared_ptr<const ast::Body> body) : body_(std::move(body)) {}
  std::shared_ptr<const ast::Body> body_;
};

}  // namespace baton::jinja

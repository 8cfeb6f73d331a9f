#include "tokenizer/jinja/template.h"

#include <new>

#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace baton::jinja {

Result<Template> Template::parse(std::string_view source) {
  try {
    return Template(std::make_shared<const ast::Body>(parse_template(source)));
  } catch (const TemplateError& e) {
    return invalid_argument("chat template syntax error (line {}): {}", e.line, e.message);
  } catch (const std::bad_alloc&) {
    return resource_exhausted("chat template: out of memory while parsing");
  }
}

Result<std::string> Template::render(const std::vector<std::pair<std::string_view, Value>>& globals,
                                     const RenderLimits& limits) const {
  Scope scope(nullptr);
  for (const auto& [name, value] : globals) scope.set(name, value);
  Interpreter interpreter(limits);
  std::string out;
  try {
    interpreter.render(*body_, scope, out);
  } catch (const TemplateError& e) {
    if (e.raised) return invalid_argument("{}", e.message);
    return invalid_argument("chat template error (line {}): {}", e.line, e.message);
  } catch (const std::bad_alloc&) {
    return resource_exhausted("chat template: out of memory while rendering");
  } catch (const std::exception& e) {
    return internal_error("chat template: unexpected error while rendering: {}", e.what());
  }
  return out;
}

}  // namespace baton::jinja

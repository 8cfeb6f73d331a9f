// Template source -> syntax tree. Errors (a malformed template, nesting past
// kMaxNesting) are thrown as TemplateError with the line.
#pragma once

#include <string_view>

#include "tokenizer/jinja/ast.h"

namespace baton::jinja {

// How deeply blocks and expressions may nest in a template's source.
inline constexpr int kMaxNesting = 100;

ast::Body parse_template(std::string_view source);

}  // namespace baton::jinja

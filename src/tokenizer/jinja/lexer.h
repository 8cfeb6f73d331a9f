// Jinja's two lexing levels: the template source split into text and tags
// (with whitespace control: `-`, `+`, trim_blocks and lstrip_blocks as
// transformers sets them, one trailing newline dropped), and the inside of a
// tag split into expression tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace baton::jinja {

struct Segment {
  enum class Kind { kText, kExpression, kStatement };
  Kind kind;
  std::string text;  // the text, or what is between the tag's delimiters
  int line;          // 1-based line where it starts
};

struct Token {
  enum class Kind { kName, kString, kInt, kFloat, kOperator, kEnd };
  Kind kind;
  std::string text;  // a string token holds its decoded value
  size_t pos;        // byte offset inside the tag
};

// Thrown (and caught inside the engine) for a malformed template or a
// failed render; never leaves the tokenizer layer.
struct TemplateError {
  std::string message;
  int line = 0;
  bool raised = false;  // raise_exception(): the template's own message
};

// Splits a template. Throws TemplateError on an unclosed tag or comment.
std::vector<Segment> split_template(std::string_view source);

// Tokenizes the inside of a tag. Throws TemplateError on a bad character or
// an unterminated string.
std::vector<Token> tokenize_tag(std::string_view text, int line);

}  // namespace baton::jinja

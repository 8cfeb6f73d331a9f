// Runs a parsed template: statements write to an output string, expressions
// compute Values. Every render is bounded: statements, loop iterations and
// calls count steps (large string and list work counts in proportion), every
// string and the output have a size cap, macro calls a depth cap. Errors are
// thrown as TemplateError and turned into a Status by Template::render.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/value.h"

namespace baton::jinja {

struct RenderLimits {
  uint64_t max_steps = 1'000'000;
  size_t max_output_bytes = 16u << 20;  // also the largest string a template may build
  size_t max_bytes_built = 256u << 20;  // all strings a render builds, together (bounds its memory)
  size_t max_list_items = 100'000;      // the longest list a template may build
  int max_call_depth = 64;
};

// Call arguments as the template wrote them.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;

  // The argument at `index` or named `name`; undefined when absent.
  const Value& get(size_t index, std::string_view name) const;
  size_t size() const { return positional.size() + named.size(); }
};

class Interpreter;
class Scope;
using BuiltinFunction = Value (*)(Interpreter&, const Args&);

struct Callable {
  std::string name;
  BuiltinFunction builtin = nullptr;    // a global function (range, namespace, ...)
  const ast::Stmt* macro = nullptr;     // a {% macro %}, or a {% call %} block (caller)
  Scope* caller_scope = nullptr;        // caller(): the scope of its call block
  std::shared_ptr<bool> caller_active;  // caller(): false once its call block ended
};

// Variables of one level (template, loop, macro call), chained to the level
// that encloses it. Names point into the syntax tree or the render's globals.
class Scope {
 public:
  explicit Scope(Scope* parent) : parent_(parent) {}
  const Value* find(std::string_view name) const;
  void set(std::string_view name, Value value);
  Scope* parent() const { return parent_; }

 private:
  Scope* parent_;
  std::vector<std::pair<std::string_view, Value>> vars_;
};

class Interpreter {
 public:
  explicit Interpreter(const RenderLimits& limits) : limits_(limits) {}

  // Renders `body` with `globals` as the template's variables.
  void render(const ast::Body& body, Scope& globals, std::string& out);

  // Budget checks, for builtins too.
  void charge(uint64_t steps);
  void check_string_size(size_t num_bytes) const;
  void check_list_size(size_t num_items) const;
  // Counts the text a computed value holds (a string, or a list's strings)
  // against max_bytes_built.
  void account(const Value& v);
  void account_bytes(size_t num_bytes);
  [[noreturn]] void fail(const std::string& message) const;

  // Filters and tests that take a filter or test by name (map, select, ...).
  Value apply_filter(const std::string& name, const Value& value, const Args& args);
  bool apply_test(const std::string& name, const Value& value, const Args& args);
  Value call(const Value& callee, const Args& args);

  int line() const { return line_; }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const ast::Body& body, Scope& scope, std::string& out);
  Flow exec(const ast::Stmt& st, Scope& scope, std::string& out);
  Flow exec_for(const ast::Stmt& st, Scope& scope, std::string& out);
  void exec_set(const ast::Stmt& st, Scope& scope);
  void exec_call_block(const ast::Stmt& st, Scope& scope, std::string& out);
  Value call_macro(const Callable& c, const Args& args);
  void append(std::string& out, const Value& v);

  Value eval(const ast::Expr& e, Scope& scope);
  Value eval_name(const ast::Expr& e, Scope& scope);
  Value eval_call(const ast::Expr& e, Scope& scope);
  // A filter chain whose innermost input is `innermost` (filter and set blocks).
  Value eval_filter_chain(const ast::Expr& e, Value innermost, Scope& scope);
  Value eval_binary(const ast::Expr& e, Scope& scope);
  Args eval_args(const ast::Expr& e, Scope& scope, size_t first_child);

  RenderLimits limits_;
  uint64_t steps_ = 0;
  size_t bytes_built_ = 0;
  int call_depth_ = 0;
  int line_ = 0;
  Scope* root_ = nullptr;
};

}  // namespace baton::jinja

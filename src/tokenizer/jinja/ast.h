// The syntax tree of a parsed template: expressions and statements as plain
// nodes owned by their parent (the Template owns the root).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace baton::jinja::ast {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using Body = std::vector<std::unique_ptr<Stmt>>;

enum class ExprKind {
  kLiteral,  // literal
  kName,     // name
  kGetAttr,  // children[0].name
  kGetItem,  // children[0][children[1]]
  kSlice,    // children[0][children[1]:children[2]:children[3]] (null parts omitted)
  kCall,     // children[0](children[1..], kwargs)
  kFilter,   // children[0] | name(children[1..], kwargs); children[0] null in a filter block
  kTest,     // children[0] is [not] name(children[1..])
  kUnary,    // name ("-", "+", "not") children[0]
  kBinary,   // children[0] name children[1]: arithmetic, comparison, "in", "not in", "~"
  kAnd,
  kOr,
  kTernary,  // children[0] if children[1] else children[2] (may be null)
  kList,     // [children...]
  kTuple,    // (children...) — a list to the template
  kDict,     // {children[0]: children[1], ...}
};

struct Expr {
  ExprKind kind;
  int line = 0;
  std::string name;
  Value literal;
  bool negated = false;  // kTest: "is not"
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

enum class StmtKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches, else_body
  kFor,          // for targets in expr [if expr2]: body, else_body
  kSet,          // set targets = expr  (targets[0] "ns.attr" when attr is set)
  kSetBlock,     // set targets[0] [| expr filter chain]: body
  kMacro,        // macro name(targets = defaults): body
  kCallBlock,    // call(targets) expr: body
  kFilterBlock,  // filter expr (a filter chain with a null innermost value): body
  kBreak,
  kContinue,
  kGeneration,  // transformers' {% generation %}: body, rendered as is
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;  // kText; kMacro: the name; kSet "ns.attr": the attribute
  std::vector<std::string> targets;
  std::vector<ExprPtr> defaults;  // kMacro/kCallBlock: one per target (null: none)
  ExprPtr expr, expr2;
  std::vector<std::pair<ExprPtr, Body>> branches;  // kIf: condition and body, in order
  Body body, else_body;
};

}  // namespace baton::jinja::ast

#include "tokenizer/jinja/interpreter.h"

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/python_format.h"

namespace baton::jinja {

using ast::Expr;
using ast::ExprKind;
using ast::Stmt;
using ast::StmtKind;

namespace {
const Value kUndefined;
constexpr uint64_t kBytesPerStep = 1024;  // string work counted as steps

bool holds_namespace(const Value& v) {
  if (v.kind() == Value::Kind::kLoop) return true;
  if (v.is_dict()) {
    if (v.as_dict().is_namespace) return true;
    for (const auto& kv : v.as_dict().items) {
      if ((kv.second.depth() > 0 || kv.second.kind() == Value::Kind::kLoop) && holds_namespace(kv.second)) return true;
    }
  } else if (v.is_list()) {
    for (const Value& e : v.as_list()) {
      if ((e.depth() > 0 || e.kind() == Value::Kind::kLoop) && holds_namespace(e)) return true;
    }
  }
  return false;
}
}  // namespace

const Value& Args::get(size_t index, std::string_view name) const {
  if (index < positional.size()) return positional[index];
  for (const auto& [k, v] : named) {
    if (k == name) return v;
  }
  return kUndefined;
}

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent_) {
    for (const auto& [k, v] : s->vars_) {
      if (k == name) return &v;
    }
  }
  return nullptr;
}

void Scope::set(std::string_view name, Value value) {
  for (auto& [k, v] : vars_) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  vars_.emplace_back(name, std::move(value));
}

void Interpreter::fail(const std::string& message) const { throw TemplateError{message, line_}; }

void Interpreter::charge(uint64_t steps) {
  steps_ += steps;
  if (steps_ > limits_.max_steps) {
    fail("the template ran past its step limit (" + std::to_string(limits_.max_steps) + " steps)");
  }
}

void Interpreter::check_string_size(size_t num_bytes) const {
  if (num_bytes > limits_.max_output_bytes) {
    fail("the template built a string past the output limit (" + std::to_string(limits_.max_output_bytes) + " bytes)");
  }
}

void Interpreter::check_list_size(size_t num_items) const {
  if (num_items > limits_.max_list_items) {
    fail("the template built a list past its limit (" + std::to_string(limits_.max_list_items) + " items)");
  }
}

void Interpreter::account_bytes(size_t num_bytes) {
  bytes_built_ += num_bytes;
  if (bytes_built_ > limits_.max_bytes_built) {
    fail("the template built more text than its limit (" + std::to_string(limits_.max_bytes_built) + " bytes)");
  }
}

void Interpreter::account(const Value& v) {
  if (v.is_string()) {
    account_bytes(v.as_string().size());
  } else if (v.is_list()) {
    size_t n = 0;
    for (const Value& e : v.as_list()) n += e.is_string() ? e.as_string().size() : 0;
    account_bytes(n);
  }
}

void Interpreter::render(const ast::Body& body, Scope& globals, std::string& out) {
  root_ = &globals;
  Flow flow = exec_body(body, globals, out);
  if (flow != Flow::kNormal) fail("'break' or 'continue' outside a loop");
}

void Interpreter::append(std::string& out, const Value& v) {
  const size_t before = out.size();
  if (v.is_string()) {
    out += v.as_string();
  } else {
    append_python_str(out, v);
  }
  check_string_size(out.size());
  account_bytes(out.size() - before);
}

Interpreter::Flow Interpreter::exec_body(const ast::Body& body, Scope& scope, std::string& out) {
  for (const auto& st : body) {
    Flow flow = exec(*st, scope, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& st, Scope& scope, std::string& out) {
  line_ = st.line;
  charge(1);
  switch (st.kind) {
    case StmtKind::kText:
      out += st.text;
      check_string_size(out.size());
      account_bytes(st.text.size());
      return Flow::kNormal;
    case StmtKind::kOutput: append(out, eval(*st.expr, scope)); return Flow::kNormal;
    case StmtKind::kIf:
      for (const auto& [cond, body] : st.branches) {
        if (eval(*cond, scope).truthy()) return exec_body(body, scope, out);
      }
      return exec_body(st.else_body, scope, out);
    case StmtKind::kFor: return exec_for(st, scope, out);
    case StmtKind::kSet: exec_set(st, scope); return Flow::kNormal;
    case StmtKind::kSetBlock: {
      std::string captured;
      exec_body(st.body, scope, captured);
      Value v = Value::string(std::move(captured));
      if (st.expr) v = eval_filter_chain(*st.expr, std::move(v), scope);
      scope.set(st.targets[0], std::move(v));
      return Flow::kNormal;
    }
    case StmtKind::kMacro: {
      auto c = std::make_shared<Callable>();
      c->name = st.text;
      c->macro = &st;
      scope.set(st.text, Value::callable(std::move(c)));
      return Flow::kNormal;
    }
    case StmtKind::kCallBlock: exec_call_block(st, scope, out); return Flow::kNormal;
    case StmtKind::kFilterBlock: {
      std::string captured;
      exec_body(st.body, scope, captured);
      append(out, eval_filter_chain(*st.expr, Value::string(std::move(captured)), scope));
      return Flow::kNormal;
    }
    case StmtKind::kBreak: return Flow::kBreak;
    case StmtKind::kContinue: return Flow::kContinue;
    case StmtKind::kGeneration: return exec_body(st.body, scope, out);
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& st, Scope& scope, std::string& out) {
  std::shared_ptr<const List> items = iterate(*this, eval(*st.expr, scope));
  // Each iteration has its own scope (a `set` in the body starts again from
  // the enclosing value every iteration, as in jinja2).
  auto bind = [&](Scope& iteration, const Value& item) {
    if (st.targets.size() == 1) {
      iteration.set(st.targets[0], item);
      return;
    }
    if (!item.is_list() || item.as_list().size() != st.targets.size()) {
      fail("cannot unpack " + std::string(item.type_name()) + " into " + std::to_string(st.targets.size()) +
           " loop variables");
    }
    for (size_t k = 0; k < st.targets.size(); ++k) iteration.set(st.targets[k], item.as_list()[k]);
  };
  std::shared_ptr<const List> filtered = items;
  if (st.expr2) {  // for x in xs if cond: the loop object counts only what passes
    List kept;
    for (const Value& item : *items) {
      charge(1);
      Scope iteration(&scope);
      bind(iteration, item);
      if (eval(*st.expr2, iteration).truthy()) kept.push_back(item);
    }
    filtered = std::make_shared<const List>(std::move(kept));
  }
  if (filtered->empty()) return exec_body(st.else_body, scope, out);
  auto state = std::make_shared<LoopState>();
  state->items = filtered;
  const Value loop_value = Value::loop(state);
  for (size_t i = 0; i < filtered->size(); ++i) {
    charge(1);
    state->index0 = i;
    Scope iteration(&scope);
    iteration.set("loop", loop_value);
    bind(iteration, (*filtered)[i]);
    if (exec_body(st.body, iteration, out) == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Interpreter::exec_set(const Stmt& st, Scope& scope) {
  Value v = eval(*st.expr, scope);
  if (!st.text.empty()) {  // set ns.attr = v
    const Value* target = scope.find(st.targets[0]);
    if (target == nullptr || !target->is_dict() || !target->as_dict().is_namespace) {
      fail("cannot assign attribute '" + st.text + "' of '" + st.targets[0] + "': it is not a namespace");
    }
    // No cycles: a namespace holds no namespace and no loop object.
    if (holds_namespace(v)) fail("a namespace cannot hold a namespace or a loop object");
    if (v.depth() > kMaxValueDepth) fail("the value nests too deeply");
    target->mutable_dict().set(st.text, std::move(v));
    return;
  }
  if (st.targets.size() == 1) {
    scope.set(st.targets[0], std::move(v));
    return;
  }
  if (!v.is_list() || v.as_list().size() != st.targets.size()) {
    fail("cannot unpack " + std::string(v.type_name()) + " into " + std::to_string(st.targets.size()) + " names");
  }
  for (size_t k = 0; k < st.targets.size(); ++k) scope.set(st.targets[k], v.as_list()[k]);
}

void Interpreter::exec_call_block(const Stmt& st, Scope& scope, std::string& out) {
  const Expr& call_expr = *st.expr;
  Value callee = eval(*call_expr.children[0], scope);
  if (!callee.is_callable() || callee.as_callable().macro == nullptr) fail("'call' needs a macro");
  Args args = eval_args(call_expr, scope, 1);
  auto caller = std::make_shared<Callable>();
  caller->name = "caller";
  caller->macro = &st;
  caller->caller_scope = &scope;
  caller->caller_active = std::make_shared<bool>(true);
  auto active = caller->caller_active;
  args.named.emplace_back("caller", Value::callable(caller));
  Value result;
  try {
    result = call_macro(callee.as_callable(), args);
  } catch (...) {
    *active = false;
    throw;
  }
  *active = false;
  append(out, result);
}

Value Interpreter::call(const Value& callee, const Args& args) {
  if (!callee.is_callable()) {
    fail(std::string("'") + (callee.is_undefined() ? callee.undefined_name() : callee.type_name()) +
         "' is not callable");
  }
  const Callable& c = callee.as_callable();
  charge(1);
  Value result = c.builtin != nullptr ? c.builtin(*this, args) : call_macro(c, args);
  account(result);
  return result;
}

Value Interpreter::call_macro(const Callable& c, const Args& args) {
  if (c.caller_active && !*c.caller_active) fail("caller() used after its call block ended");
  if (++call_depth_ > limits_.max_call_depth) {
    fail("macro calls nest deeper than " + std::to_string(limits_.max_call_depth) + " (recursion?)");
  }
  const Stmt& m = *c.macro;
  Scope frame(c.caller_scope != nullptr ? c.caller_scope : root_);
  if (args.positional.size() > m.targets.size()) {
    fail("macro '" + c.name + "' takes " + std::to_string(m.targets.size()) + " arguments, got " +
         std::to_string(args.positional.size()));
  }
  for (size_t k = 0; k < m.targets.size(); ++k) {
    const Value& given = args.get(k, m.targets[k]);
    if (!given.is_undefined() || m.defaults[k] == nullptr) {
      frame.set(m.targets[k], given);
    } else {
      frame.set(m.targets[k], eval(*m.defaults[k], frame));
    }
  }
  for (const auto& [name, v] : args.named) {
    if (name == "caller") frame.set("caller", v);
  }
  std::string out;
  const int saved_line = line_;
  exec_body(m.body, frame, out);
  line_ = saved_line;
  --call_depth_;
  return Value::string(std::move(out));
}

Args Interpreter::eval_args(const Expr& e, Scope& scope, size_t first_child) {
  Args args;
  args.positional.reserve(e.children.size() - first_child);
  for (size_t k = first_child; k < e.children.size(); ++k) args.positional.push_back(eval(*e.children[k], scope));
  for (const auto& [name, expr] : e.kwargs) args.named.emplace_back(name, eval(*expr, scope));
  return args;
}

Value Interpreter::eval_name(const Expr& e, Scope& scope) {
  if (const Value* v = scope.find(e.name)) return *v;
  if (const Value* f = find_global_function(e.name)) return *f;
  return Value::undefined(e.name);
}

Value Interpreter::eval_call(const Expr& e, Scope& scope) {
  const Expr& callee = *e.children[0];
  if (callee.kind == ExprKind::kGetAttr) {
    Value obj = eval(*callee.children[0], scope);
    if (obj.is_dict()) {
      const Value* member = obj.as_dict().find(callee.name);
      if (member != nullptr && member->is_callable()) return call(*member, eval_args(e, scope, 1));
    }
    if (obj.is_undefined()) fail("'" + obj.undefined_name() + "' is undefined");
    Args args = eval_args(e, scope, 1);
    charge(1);
    Value result = call_method(*this, obj, callee.name, args);
    account(result);
    return result;
  }
  Value fn = eval(callee, scope);
  if (fn.is_undefined()) fail("'" + fn.undefined_name() + "' is undefined");
  return call(fn, eval_args(e, scope, 1));
}

Value Interpreter::eval_filter_chain(const Expr& e, Value innermost, Scope& scope) {
  Value input = e.children[0] ? eval_filter_chain(*e.children[0], std::move(innermost), scope) : std::move(innermost);
  Args args = eval_args(e, scope, 1);
  return apply_filter(e.name, input, args);
}

Value Interpreter::apply_filter(const std::string& name, const Value& value, const Args& args) {
  charge(1);
  Value result = call_filter(*this, name, value, args);
  account(result);
  return result;
}

bool Interpreter::apply_test(const std::string& name, const Value& value, const Args& args) {
  return call_test(*this, name, value, args);
}

Value Interpreter::eval(const Expr& e, Scope& scope) {
  switch (e.kind) {
    case ExprKind::kLiteral: return e.literal;
    case ExprKind::kName: return eval_name(e, scope);
    case ExprKind::kGetAttr: return get_attribute(*this, eval(*e.children[0], scope), e.name);
    case ExprKind::kGetItem: {
      Value obj = eval(*e.children[0], scope);
      return get_item(*this, obj, eval(*e.children[1], scope));
    }
    case ExprKind::kSlice: {
      Value obj = eval(*e.children[0], scope);
      Value parts[3];
      for (int k = 0; k < 3; ++k) {
        if (e.children[k + 1]) parts[k] = eval(*e.children[k + 1], scope);
      }
      Value result = slice_value(*this, obj, parts[0], parts[1], parts[2]);
      account(result);
      return result;
    }
    case ExprKind::kCall: return eval_call(e, scope);
    case ExprKind::kFilter: {
      Value input = eval(*e.children[0], scope);
      Args args = eval_args(e, scope, 1);
      return apply_filter(e.name, input, args);
    }
    case ExprKind::kTest: {
      Value input = eval(*e.children[0], scope);
      Args args = eval_args(e, scope, 1);
      return Value::boolean(apply_test(e.name, input, args) != e.negated);
    }
    case ExprKind::kUnary: {
      Value v = eval(*e.children[0], scope);
      if (e.name == "not") return Value::boolean(!v.truthy());
      if (v.is_float()) return Value::number(e.name == "-" ? -v.as_float() : v.as_float());
      if (v.is_number()) {
        if (e.name == "-" && v.as_int() == INT64_MIN) fail("integer overflow in unary -");
        return Value::integer(e.name == "-" ? -v.as_int() : v.as_int());
      }
      fail(std::string("bad operand type for unary ") + e.name + ": '" + v.type_name() + "'");
    }
    case ExprKind::kBinary: return eval_binary(e, scope);
    case ExprKind::kAnd: {
      Value left = eval(*e.children[0], scope);
      return left.truthy() ? eval(*e.children[1], scope) : left;
    }
    case ExprKind::kOr: {
      Value left = eval(*e.children[0], scope);
      return left.truthy() ? left : eval(*e.children[1], scope);
    }
    case ExprKind::kTernary:
      if (eval(*e.children[1], scope).truthy()) return eval(*e.children[0], scope);
      return e.children[2] ? eval(*e.children[2], scope) : Value::undefined("");
    case ExprKind::kList:
    case ExprKind::kTuple: {
      List items;
      items.reserve(e.children.size());
      for (const auto& c : e.children) items.push_back(eval(*c, scope));
      Value v = Value::list(std::move(items));
      if (v.depth() > kMaxValueDepth) fail("the value nests too deeply");
      return v;
    }
    case ExprKind::kDict: {
      auto d = std::make_shared<Dict>();
      for (size_t k = 0; k + 1 < e.children.size(); k += 2) {
        Value key = eval(*e.children[k], scope);
        if (!key.is_string()) fail("dict keys must be strings here (got " + std::string(key.type_name()) + ")");
        d->set(key.as_string(), eval(*e.children[k + 1], scope));
      }
      Value v = Value::dict(std::move(d));
      if (v.depth() > kMaxValueDepth) fail("the value nests too deeply");
      return v;
    }
  }
  return Value();
}

Value Interpreter::eval_binary(const Expr& e, Scope& scope) {
  Value a = eval(*e.children[0], scope);
  Value b = eval(*e.children[1], scope);
  Value r = binary_op(*this, e.name, a, b);
  if (r.is_string()) {
    check_string_size(r.as_string().size());
    charge(r.as_string().size() / kBytesPerStep);
  } else if (r.is_list()) {
    check_list_size(r.as_list().size());
    charge(r.as_list().size());
  }
  account(r);
  return r;
}

}  // namespace baton::jinja

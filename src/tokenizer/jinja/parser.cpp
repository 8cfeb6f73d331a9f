#include "tokenizer/jinja/parser.h"

#include <charconv>
#include <cstdlib>
#include <initializer_list>

#include "tokenizer/jinja/lexer.h"

namespace baton::jinja {

namespace {

using ast::Body;
using ast::Expr;
using ast::ExprKind;
using ast::ExprPtr;
using ast::Stmt;
using ast::StmtKind;

class Parser {
 public:
  explicit Parser(std::vector<Segment> segments) : segments_(std::move(segments)) {}

  Body parse_all() {
    Body body = parse_body({});
    if (seg_ < segments_.size()) fail("unexpected '" + first_word(segments_[seg_]) + "'");
    return body;
  }

 private:
  // ---- statements ----

  static std::string first_word(const Segment& s) {
    size_t b = s.text.find_first_not_of(" \t\n");
    if (b == std::string::npos) return "";
    size_t e = b;
    while (e < s.text.size() && (std::isalnum(static_cast<unsigned char>(s.text[e])) || s.text[e] == '_')) ++e;
    return s.text.substr(b, e - b);
  }

  // Statements until one whose keyword is in `ends` (left unconsumed).
  Body parse_body(std::initializer_list<std::string_view> ends) {
    Nest nest(*this);
    Body body;
    while (seg_ < segments_.size()) {
      const Segment& s = segments_[seg_];
      line_ = s.line;
      if (s.kind == Segment::Kind::kText) {
        auto st = make_stmt(StmtKind::kText);
        st->text = s.text;
        body.push_back(std::move(st));
        ++seg_;
        continue;
      }
      if (s.kind == Segment::Kind::kExpression) {
        begin_tag(s);
        auto st = make_stmt(StmtKind::kOutput);
        st->expr = parse_expression();
        end_tag();
        body.push_back(std::move(st));
        continue;
      }
      const std::string word = first_word(s);
      for (auto e : ends) {
        if (word == e) return body;
      }
      body.push_back(parse_statement(s));
    }
    if (ends.size() > 0) fail("missing '" + std::string(*(ends.end() - 1)) + "' (unexpected end of template)");
    return body;
  }

  std::unique_ptr<Stmt> make_stmt(StmtKind kind) {
    auto st = std::make_unique<Stmt>();
    st->kind = kind;
    st->line = line_;
    return st;
  }

  void begin_tag(const Segment& s) {
    tokens_ = tokenize_tag(s.text, s.line);
    tok_ = 0;
    line_ = s.line;
    ++seg_;
  }
  void end_tag() {
    if (peek().kind != Token::Kind::kEnd) fail("unexpected '" + peek().text + "' at the end of a tag");
  }
  // Consumes the closing tag `{% word %}`.
  void expect_end(std::string_view word) {
    if (seg_ >= segments_.size() || first_word(segments_[seg_]) != word) fail("expected '" + std::string(word) + "'");
    begin_tag(segments_[seg_]);
    next();
    if (peek().kind == Token::Kind::kName && peek().text != "" && (word == "endmacro" || word == "endset")) next();
    end_tag();
  }

  std::unique_ptr<Stmt> parse_statement(const Segment& s) {
    begin_tag(s);
    const std::string word = expect_name();
    if (word == "if") return parse_if();
    if (word == "for") return parse_for();
    if (word == "set") return parse_set();
    if (word == "macro") return parse_macro();
    if (word == "call") return parse_call_block();
    if (word == "filter") return parse_filter_block();
    if (word == "break" || word == "continue") {
      auto st = make_stmt(word == "break" ? StmtKind::kBreak : StmtKind::kContinue);
      end_tag();
      return st;
    }
    if (word == "generation") {
      auto st = make_stmt(StmtKind::kGeneration);
      end_tag();
      st->body = parse_body({"endgeneration"});
      expect_end("endgeneration");
      return st;
    }
    fail("unknown or unsupported statement '" + word + "'");
  }

  std::unique_ptr<Stmt> parse_if() {
    auto st = make_stmt(StmtKind::kIf);
    ExprPtr cond = parse_expression();
    end_tag();
    for (;;) {
      Body body = parse_body({"elif", "else", "endif"});
      st->branches.emplace_back(std::move(cond), std::move(body));
      const std::string word = first_word(segments_[seg_]);
      begin_tag(segments_[seg_]);
      next();
      if (word == "elif") {
        cond = parse_expression();
        end_tag();
        continue;
      }
      end_tag();
      if (word == "else") {
        st->else_body = parse_body({"endif"});
        expect_end("endif");
      }
      return st;
    }
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> targets;
    targets.push_back(expect_name());
    while (accept(",")) targets.push_back(expect_name());
    return targets;
  }

  std::unique_ptr<Stmt> parse_for() {
    auto st = make_stmt(StmtKind::kFor);
    bool paren = accept("(");
    st->targets = parse_targets();
    if (paren) expect(")");
    if (expect_name() != "in") fail("expected 'in' in a for loop");
    st->expr = parse_ternary_free();
    if (accept_name("if")) st->expr2 = parse_ternary_free();
    if (is_name("recursive")) fail("recursive for loops are not supported");
    end_tag();
    st->body = parse_body({"else", "endfor"});
    if (first_word(segments_[seg_]) == "else") {
      begin_tag(segments_[seg_]);
      next();
      end_tag();
      st->else_body = parse_body({"endfor"});
    }
    expect_end("endfor");
    return st;
  }

  std::unique_ptr<Stmt> parse_set() {
    std::string first = expect_name();
    if (accept(".")) {
      auto st = make_stmt(StmtKind::kSet);
      st->targets = {first};
      st->text = expect_name();
      expect("=");
      st->expr = parse_expression();
      end_tag();
      return st;
    }
    std::vector<std::string> targets{first};
    while (accept(",")) targets.push_back(expect_name());
    if (accept("=")) {
      auto st = make_stmt(StmtKind::kSet);
      st->targets = std::move(targets);
      st->expr = parse_tuple_or_expression();
      end_tag();
      return st;
    }
    if (targets.size() != 1) fail("a block set takes one name");
    auto st = make_stmt(StmtKind::kSetBlock);
    st->targets = std::move(targets);
    if (accept("|")) st->expr = parse_filter_chain(nullptr);
    end_tag();
    st->body = parse_body({"endset"});
    expect_end("endset");
    return st;
  }

  void parse_params(Stmt& st) {
    expect("(");
    while (!accept(")")) {
      if (!st.targets.empty()) expect(",");
      if (accept(")")) break;
      st.targets.push_back(expect_name());
      st.defaults.push_back(accept("=") ? parse_expression() : nullptr);
    }
  }

  std::unique_ptr<Stmt> parse_macro() {
    auto st = make_stmt(StmtKind::kMacro);
    st->text = expect_name();
    parse_params(*st);
    end_tag();
    st->body = parse_body({"endmacro"});
    expect_end("endmacro");
    return st;
  }

  std::unique_ptr<Stmt> parse_call_block() {
    auto st = make_stmt(StmtKind::kCallBlock);
    if (peek().text == "(" && peek().kind == Token::Kind::kOperator) parse_params(*st);
    st->expr = parse_expression();
    if (st->expr->kind != ExprKind::kCall) fail("'call' needs a macro call");
    end_tag();
    st->body = parse_body({"endcall"});
    expect_end("endcall");
    return st;
  }

  std::unique_ptr<Stmt> parse_filter_block() {
    auto st = make_stmt(StmtKind::kFilterBlock);
    st->expr = parse_filter_chain(nullptr);
    end_tag();
    st->body = parse_body({"endfilter"});
    expect_end("endfilter");
    return st;
  }

  // ---- expressions ----

  struct Nest {
    explicit Nest(Parser& p) : p(p) {
      if (++p.depth_ > kMaxNesting) p.fail("the template nests deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    ~Nest() { --p.depth_; }
    Parser& p;
  };

  const Token& peek(size_t ahead = 0) const {
    const size_t i = std::min(tok_ + ahead, tokens_.size() - 1);
    return tokens_[i];
  }
  const Token& next() { return tokens_[std::min(tok_++, tokens_.size() - 1)]; }
  bool is_op(std::string_view op, size_t ahead = 0) const {
    return peek(ahead).kind == Token::Kind::kOperator && peek(ahead).text == op;
  }
  bool is_name(std::string_view name, size_t ahead = 0) const {
    return peek(ahead).kind == Token::Kind::kName && peek(ahead).text == name;
  }
  bool accept(std::string_view op) {
    if (!is_op(op)) return false;
    ++tok_;
    return true;
  }
  bool accept_name(std::string_view name) {
    if (!is_name(name)) return false;
    ++tok_;
    return true;
  }
  void expect(std::string_view op) {
    if (!accept(op)) fail("expected '" + std::string(op) + "', got '" + peek().text + "'");
  }
  std::string expect_name() {
    if (peek().kind != Token::Kind::kName) fail("expected a name, got '" + peek().text + "'");
    return next().text;
  }

  [[noreturn]] void fail(const std::string& message) const { throw TemplateError{message, line_}; }

  ExprPtr make(ExprKind kind, std::string name = {}) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line_;
    e->name = std::move(name);
    return e;
  }
  ExprPtr make2(ExprKind kind, std::string name, ExprPtr a, ExprPtr b) {
    auto e = make(kind, std::move(name));
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return e;
  }

  // `a, b` without parentheses, as `set x = a, b` allows.
  ExprPtr parse_tuple_or_expression() {
    ExprPtr first = parse_expression();
    if (!is_op(",")) return first;
    auto t = make(ExprKind::kTuple);
    t->children.push_back(std::move(first));
    while (accept(",")) {
      if (peek().kind == Token::Kind::kEnd) break;
      t->children.push_back(parse_expression());
    }
    return t;
  }

  ExprPtr parse_expression() {
    Nest nest(*this);
    ExprPtr value = parse_or();
    while (accept_name("if")) {
      auto t = make(ExprKind::kTernary);
      ExprPtr cond = parse_or();
      t->children.push_back(std::move(value));
      t->children.push_back(std::move(cond));
      t->children.push_back(accept_name("else") ? parse_expression() : nullptr);
      value = std::move(t);
    }
    return value;
  }
  // For-loop iterables and filters: no `x if y` (the `if` belongs to the loop).
  ExprPtr parse_ternary_free() {
    Nest nest(*this);
    return parse_or();
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (accept_name("or")) left = make2(ExprKind::kOr, "or", std::move(left), parse_and());
    return left;
  }
  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (accept_name("and")) left = make2(ExprKind::kAnd, "and", std::move(left), parse_not());
    return left;
  }
  ExprPtr parse_not() {
    if (accept_name("not")) {
      Nest nest(*this);
      auto e = make(ExprKind::kUnary, "not");
      e->children.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr left = parse_math1();
    for (;;) {
      std::string op;
      if (peek().kind == Token::Kind::kOperator && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                                    peek().text == ">" || peek().text == "<=" || peek().text == ">=")) {
        op = next().text;
      } else if (accept_name("in")) {
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        tok_ += 2;
        op = "not in";
      } else {
        return left;
      }
      // a < b < c is (a < b) and (b < c) in Python; chat templates do not
      // chain, so the chain is evaluated left to right as nested comparisons.
      left = make2(ExprKind::kBinary, op, std::move(left), parse_math1());
    }
  }
  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = next().text;
      left = make2(ExprKind::kBinary, op, std::move(left), parse_concat());
    }
    return left;
  }
  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (accept("~")) left = make2(ExprKind::kBinary, "~", std::move(left), parse_math2());
    return left;
  }
  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = next().text;
      left = make2(ExprKind::kBinary, op, std::move(left), parse_pow());
    }
    return left;
  }
  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (accept("**")) left = make2(ExprKind::kBinary, "**", std::move(left), parse_unary(true));
    return left;
  }
  ExprPtr parse_unary(bool with_filter) {
    Nest nest(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      node = make(ExprKind::kUnary, next().text);
      node->children.push_back(parse_unary(false));
    } else {
      node = parse_postfix(parse_primary());
    }
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = peek();
    switch (t.kind) {
      case Token::Kind::kName: {
        std::string name = next().text;
        if (name == "true" || name == "True") return literal(Value::boolean(true));
        if (name == "false" || name == "False") return literal(Value::boolean(false));
        if (name == "none" || name == "None") return literal(Value::none());
        return make(ExprKind::kName, std::move(name));
      }
      case Token::Kind::kString: {
        std::string s = next().text;
        while (peek().kind == Token::Kind::kString) s += next().text;
        return literal(Value::string(std::move(s)));
      }
      case Token::Kind::kInt: {
        const std::string& digits = next().text;
        int64_t v = 0;
        auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
        if (ec != std::errc()) return literal(Value::number(std::strtod(digits.c_str(), nullptr)));
        return literal(Value::integer(v));
      }
      case Token::Kind::kFloat: return literal(Value::number(std::strtod(next().text.c_str(), nullptr)));
      case Token::Kind::kOperator: break;
      case Token::Kind::kEnd: fail("unexpected end of expression");
    }
    if (accept("(")) {
      if (accept(")")) return make(ExprKind::kTuple);
      ExprPtr first = parse_expression();
      if (!is_op(",")) {
        expect(")");
        return first;
      }
      auto tuple = make(ExprKind::kTuple);
      tuple->children.push_back(std::move(first));
      while (accept(",")) {
        if (is_op(")")) break;
        tuple->children.push_back(parse_expression());
      }
      expect(")");
      return tuple;
    }
    if (accept("[")) {
      auto list = make(ExprKind::kList);
      while (!accept("]")) {
        if (!list->children.empty()) expect(",");
        if (accept("]")) break;
        list->children.push_back(parse_expression());
      }
      return list;
    }
    if (accept("{")) {
      auto dict = make(ExprKind::kDict);
      while (!accept("}")) {
        if (!dict->children.empty()) expect(",");
        if (accept("}")) break;
        dict->children.push_back(parse_expression());
        expect(":");
        dict->children.push_back(parse_expression());
      }
      return dict;
    }
    fail("unexpected '" + t.text + "'");
  }

  ExprPtr literal(Value v) {
    auto e = make(ExprKind::kLiteral);
    e->literal = std::move(v);
    return e;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    for (;;) {
      if (accept(".")) {
        if (peek().kind == Token::Kind::kInt) {
          auto e = make(ExprKind::kGetItem);
          e->children.push_back(std::move(node));
          e->children.push_back(parse_primary());
          node = std::move(e);
        } else {
          auto e = make(ExprKind::kGetAttr, expect_name());
          e->children.push_back(std::move(node));
          node = std::move(e);
        }
      } else if (accept("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    ExprPtr parts[3];
    int part = 0;
    bool is_slice = false;
    for (;;) {
      if (accept("]")) break;
      if (accept(":")) {
        is_slice = true;
        if (++part > 2) fail("a slice has at most three parts");
        continue;
      }
      if (parts[part]) fail("expected ':' or ']' in a subscript");
      parts[part] = parse_expression();
    }
    if (!is_slice) {
      if (!parts[0]) fail("empty subscript");
      return make2(ExprKind::kGetItem, "", std::move(node), std::move(parts[0]));
    }
    auto e = make(ExprKind::kSlice);
    e->children.push_back(std::move(node));
    for (auto& p : parts) e->children.push_back(std::move(p));
    return e;
  }

  // (args, name=value) after the callee/filter; fills children[1..] and kwargs.
  void parse_call_args(Expr& e) {
    expect("(");
    bool first = true;
    while (!accept(")")) {
      if (!first) expect(",");
      first = false;
      if (accept(")")) break;
      if (peek().kind == Token::Kind::kName && is_op("=", 1)) {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!e.kwargs.empty()) fail("a positional argument follows a keyword argument");
        e.children.push_back(parse_expression());
      }
    }
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = make(ExprKind::kCall);
    e->children.push_back(std::move(callee));
    parse_call_args(*e);
    return e;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    for (;;) {
      if (is_op("|")) {
        node = parse_filter_chain(std::move(node), /*leading_bar=*/true);
      } else if (accept_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  // name(args) | name2 ... applied to `value` (null: a filter block's body).
  ExprPtr parse_filter_chain(ExprPtr value, bool leading_bar = false) {
    if (leading_bar) expect("|");
    for (;;) {
      std::string name = expect_name();
      while (accept(".")) name += "." + expect_name();
      auto f = make(ExprKind::kFilter, std::move(name));
      f->children.push_back(std::move(value));
      if (is_op("(")) parse_call_args(*f);
      value = std::move(f);
      if (!accept("|")) return value;
    }
  }

  ExprPtr parse_test(ExprPtr node) {
    auto t = make(ExprKind::kTest);
    t->negated = accept_name("not");
    t->name = expect_name();
    while (accept(".")) t->name += "." + expect_name();
    t->children.push_back(std::move(node));
    if (is_op("(")) {
      parse_call_args(*t);
    } else if ((peek().kind == Token::Kind::kName || peek().kind == Token::Kind::kString ||
                peek().kind == Token::Kind::kInt || peek().kind == Token::Kind::kFloat || is_op("[") || is_op("{")) &&
               !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if") && !is_name("in") &&
               !is_name("not")) {
      if (is_name("is")) fail("tests cannot be chained with 'is'");
      t->children.push_back(parse_postfix(parse_primary()));
    }
    return t;
  }

  std::vector<Segment> segments_;
  size_t seg_ = 0;
  std::vector<Token> tokens_;
  size_t tok_ = 0;
  int line_ = 1;
  int depth_ = 0;
};

}  // namespace

ast::Body parse_template(std::string_view source) { return Parser(split_template(source)).parse_all(); }

}  // namespace baton::jinja

// Tests, methods of strings/dicts/loops, and global functions (see builtins.h).
#include "tokenizer/jinja/builtins.h"

#include <charconv>
#include <ctime>
#include <unordered_map>

#include "tokenizer/jinja/python_format.h"

namespace baton::jinja {

namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

const std::string& want_string(Interpreter& in, const Value& v, const char* what) {
  if (!v.is_string()) in.fail(std::string(what) + " needs a string argument, got " + v.type_name());
  return v.as_string();
}

Value make_string_list(std::vector<std::string> parts) {
  List out;
  out.reserve(parts.size());
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return Value::list(std::move(out));
}

// Python's str.split / str.rsplit.
Value split(Interpreter& in, const std::string& s, const Args& args, bool from_right) {
  const Value& sep = args.get(0, "sep");
  const Value& max_v = args.get(1, "maxsplit");
  int64_t max_splits = max_v.is_number() ? max_v.as_int() : -1;
  std::vector<std::string> parts;
  in.charge(s.size() / 1024 + 1);
  if (sep.is_undefined() || sep.is_none()) {
    std::vector<std::pair<size_t, size_t>> words;
    for (size_t i = 0; i < s.size();) {
      while (i < s.size() && is_ascii_space(s[i])) ++i;
      if (i == s.size()) break;
      size_t j = i;
      while (j < s.size() && !is_ascii_space(s[j])) ++j;
      words.emplace_back(i, j);
      i = j;
    }
    if (max_splits < 0 || static_cast<size_t>(max_splits) + 1 >= words.size()) {
      for (auto [b, e] : words) parts.push_back(s.substr(b, e - b));
    } else if (!from_right) {
      for (int64_t k = 0; k < max_splits; ++k)
        parts.push_back(s.substr(words[k].first, words[k].second - words[k].first));
      std::string rest = s.substr(words[max_splits].first);
      while (!rest.empty() && is_ascii_space(rest.back())) rest.pop_back();
      parts.push_back(rest);
    } else {
      const size_t keep = words.size() - static_cast<size_t>(max_splits);
      parts.push_back(s.substr(words[0].first, words[keep - 1].second - words[0].first));
      for (size_t k = keep; k < words.size(); ++k)
        parts.push_back(s.substr(words[k].first, words[k].second - words[k].first));
    }
    return make_string_list(std::move(parts));
  }
  const std::string& d = want_string(in, sep, "split");
  if (d.empty()) in.fail("empty separator");
  if (!from_right) {
    size_t pos = 0;
    while (max_splits != 0) {
      const size_t hit = s.find(d, pos);
      if (hit == std::string::npos) break;
      parts.push_back(s.substr(pos, hit - pos));
      pos = hit + d.size();
      if (max_splits > 0) --max_splits;
    }
    parts.push_back(s.substr(pos));
  } else {
    size_t end = s.size();
    while (max_splits != 0 && end >= d.size()) {
      const size_t hit = s.rfind(d, end - d.size());
      if (hit == std::string::npos) break;
      parts.insert(parts.begin(), s.substr(hit + d.size(), end - hit - d.size()));
      end = hit;
      if (max_splits > 0) --max_splits;
    }
    parts.insert(parts.begin(), s.substr(0, end));
  }
  in.check_list_size(parts.size());
  return make_string_list(std::move(parts));
}

bool affix_matches(Interpreter& in, const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    const std::string& t = want_string(in, a, prefix ? "startswith" : "endswith");
    if (t.size() > s.size()) return false;
    return prefix ? s.compare(0, t.size(), t) == 0 : s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  if (affix.is_list()) {
    for (const Value& a : affix.as_list()) {
      if (one(a)) return true;
    }
    return false;
  }
  return one(affix);
}

// "{} and {name}".format(...): positional, numbered and named fields.
Value format(Interpreter& in, const std::string& s, const Args& args) {
  std::string out;
  size_t next_auto = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if ((c == '{' || c == '}') && i + 1 < s.size() && s[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = s.find('}', i);
    if (close == std::string::npos) in.fail("format: single '{' encountered");
    const std::string field = s.substr(i + 1, close - i - 1);
    const Value* v = nullptr;
    if (field.empty()) {
      if (next_auto < args.positional.size()) v = &args.positional[next_auto++];
    } else if (std::isdigit(static_cast<unsigned char>(field[0]))) {
      size_t k = 0;
      auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), k);
      if (ec == std::errc() && end == field.data() + field.size() && k < args.positional.size())
        v = &args.positional[k];
    } else {
      for (const auto& [name, val] : args.named) {
        if (name == field) v = &val;
      }
    }
    if (v == nullptr) in.fail("format: no value for field '{" + field + "}'");
    append_python_str(out, *v);
    in.check_string_size(out.size());
    i = close;
  }
  return Value::string(std::move(out));
}

Value string_method(Interpreter& in, const std::string& s, const std::string& name, const Args& args) {
  if (name == "startswith") return Value::boolean(affix_matches(in, s, args.get(0, "prefix"), true));
  if (name == "endswith") return Value::boolean(affix_matches(in, s, args.get(0, "suffix"), false));
  if (name == "split") return split(in, s, args, false);
  if (name == "rsplit") return split(in, s, args, true);
  if (name == "strip") return Value::string(python_strip(s, args.get(0, "chars"), true, true));
  if (name == "lstrip") return Value::string(python_strip(s, args.get(0, "chars"), true, false));
  if (name == "rstrip") return Value::string(python_strip(s, args.get(0, "chars"), false, true));
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    return in.apply_filter(name, Value::string(s), args);
  }
  if (name == "replace") return in.apply_filter("replace", Value::string(s), args);
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    const std::string& sub = want_string(in, args.get(0, "sub"), name.c_str());
    const size_t hit = name[0] == 'r' ? s.rfind(sub) : s.find(sub);
    if (hit == std::string::npos) {
      if (name.find("index") != std::string::npos) in.fail("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(hit));
  }
  if (name == "count") {
    const std::string& sub = want_string(in, args.get(0, "sub"), "count");
    if (sub.empty()) return Value::integer(static_cast<int64_t>(s.size() + 1));
    int64_t n = 0;
    for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
    return Value::integer(n);
  }
  if (name == "join") {
    Args join_args;
    join_args.positional.push_back(Value::string(s));
    return in.apply_filter("join", args.get(0, "iterable"), join_args);
  }
  if (name == "splitlines") {
    std::vector<std::string> lines;
    size_t pos = 0;
    while (pos < s.size()) {
      size_t nl = s.find('\n', pos);
      if (nl == std::string::npos) nl = s.size();
      lines.push_back(s.substr(pos, nl - pos));
      pos = nl + 1;
    }
    return make_string_list(std::move(lines));
  }
  if (name == "format") return format(in, s, args);
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" ||
      name == "isupper") {
    if (s.empty()) return Value::boolean(false);
    bool has_cased = false;
    for (char ch : s) {
      const auto u = static_cast<unsigned char>(ch);
      bool ok = true;
      if (name == "isdigit") ok = std::isdigit(u);
      if (name == "isalpha") ok = std::isalpha(u);
      if (name == "isalnum") ok = std::isalnum(u);
      if (name == "isspace") ok = is_ascii_space(ch);
      if (name == "islower") ok = !std::isupper(u);
      if (name == "isupper") ok = !std::islower(u);
      has_cased = has_cased || std::isalpha(u);
      if (!ok) return Value::boolean(false);
    }
    return Value::boolean(name == "islower" || name == "isupper" ? has_cased : true);
  }
  in.fail("'str' object has no attribute '" + name + "'");
}

Value dict_method(Interpreter& in, const Value& obj, const std::string& name, const Args& args) {
  const Dict& d = obj.as_dict();
  if (name == "items") return in.apply_filter("items", obj, {});
  if (name == "keys" || name == "values") {
    List out;
    for (const auto& [k, v] : d.items) out.push_back(name == "keys" ? Value::string(k) : v);
    return Value::list(std::move(out));
  }
  if (name == "get") {
    const Value& key = args.get(0, "key");
    const Value* v = key.is_string() ? d.find(key.as_string()) : nullptr;
    if (v != nullptr) return *v;
    const Value& dflt = args.get(1, "default");
    return dflt.is_undefined() ? Value::none() : dflt;
  }
  in.fail(std::string("'") + obj.type_name() + "' object has no attribute '" + name + "'");
}

using TestFn = bool (*)(Interpreter&, const Value&, const Args&);

bool compare_test(Interpreter& in, const std::string& op, const Value& v, const Args& a) {
  return binary_op(in, op, v, a.get(0, "other")).truthy();
}

const std::unordered_map<std::string, TestFn>& test_table() {
  static const std::unordered_map<std::string, TestFn> table = {
      {"defined", [](Interpreter&, const Value& v, const Args&) { return !v.is_undefined(); }},
      {"undefined", [](Interpreter&, const Value& v, const Args&) { return v.is_undefined(); }},
      {"none", [](Interpreter&, const Value& v, const Args&) { return v.is_none(); }},
      {"boolean", [](Interpreter&, const Value& v, const Args&) { return v.is_bool(); }},
      {"true", [](Interpreter&, const Value& v, const Args&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](Interpreter&, const Value& v, const Args&) { return v.is_bool() && !v.as_bool(); }},
      {"integer", [](Interpreter&, const Value& v, const Args&) { return v.is_int(); }},
      {"float", [](Interpreter&, const Value& v, const Args&) { return v.is_float(); }},
      {"number", [](Interpreter&, const Value& v, const Args&) { return v.is_number(); }},
      {"string", [](Interpreter&, const Value& v, const Args&) { return v.is_string(); }},
      {"mapping", [](Interpreter&, const Value& v, const Args&) { return v.is_dict(); }},
      {"iterable",
       [](Interpreter&, const Value& v, const Args&) { return v.is_list() || v.is_dict() || v.is_string(); }},
      {"sequence",
       [](Interpreter&, const Value& v, const Args&) { return v.is_list() || v.is_dict() || v.is_string(); }},
      {"callable", [](Interpreter&, const Value& v, const Args&) { return v.is_callable(); }},
      {"sameas",
       [](Interpreter&, const Value& v, const Args& a) {
         const Value& o = a.get(0, "other");
         if (v.kind() != o.kind()) return false;
         if (v.is_none() || v.is_undefined()) return true;
         if (v.is_bool()) return v.as_bool() == o.as_bool();
         return v.depth() > 0 && values_equal(v, o) && (v.is_list() ? &v.as_list() == &o.as_list() : true);
       }},
      {"even",
       [](Interpreter& in, const Value& v, const Args&) {
         if (!v.is_number()) in.fail("test 'even' needs a number");
         return v.as_int() % 2 == 0;
       }},
      {"odd",
       [](Interpreter& in, const Value& v, const Args&) {
         if (!v.is_number()) in.fail("test 'odd' needs a number");
         return v.as_int() % 2 != 0;
       }},
      {"divisibleby",
       [](Interpreter& in, const Value& v, const Args& a) {
         const Value& n = a.get(0, "num");
         if (!v.is_number() || !n.is_number() || n.as_int() == 0) in.fail("test 'divisibleby' needs nonzero numbers");
         return v.as_int() % n.as_int() == 0;
       }},
      {"eq", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, "==", v, a); }},
      {"equalto", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, "==", v, a); }},
      {"==", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, "==", v, a); }},
      {"ne", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, "!=", v, a); }},
      {"!=", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, "!=", v, a); }},
      {"lt", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, "<", v, a); }},
      {"lessthan", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, "<", v, a); }},
      {"le", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, "<=", v, a); }},
      {"gt", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, ">", v, a); }},
      {"greaterthan", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, ">", v, a); }},
      {"ge", [](Interpreter& in, const Value& v, const Args& a) { return compare_test(in, ">=", v, a); }},
      {"in",
       [](Interpreter& in, const Value& v, const Args& a) { return binary_op(in, "in", v, a.get(0, "seq")).truthy(); }},
      {"lower",
       [](Interpreter& in, const Value& v, const Args&) {
         return v.is_string() && in.apply_filter("lower", v, {}).as_string() == v.as_string();
       }},
      {"upper",
       [](Interpreter& in, const Value& v, const Args&) {
         return v.is_string() && in.apply_filter("upper", v, {}).as_string() == v.as_string();
       }},
  };
  return table;
}

// ---- global functions ----

Value fn_range(Interpreter& in, const Args& args) {
  int64_t start = 0, stop = 0, step = 1;
  for (const Value& v : args.positional) {
    if (!v.is_number() || v.is_float()) in.fail("range() needs integers");
  }
  if (args.positional.size() == 1) {
    stop = args.positional[0].as_int();
  } else if (args.positional.size() >= 2) {
    start = args.positional[0].as_int();
    stop = args.positional[1].as_int();
    if (args.positional.size() >= 3) step = args.positional[2].as_int();
  } else {
    in.fail("range() needs 1 to 3 arguments");
  }
  if (step == 0) in.fail("range() arg 3 must not be zero");
  const long double count_ld = step > 0 ? (static_cast<long double>(stop) - start + step - 1) / step
                                        : (static_cast<long double>(start) - stop - step - 1) / -step;
  const uint64_t count = count_ld <= 0 ? 0 : static_cast<uint64_t>(count_ld);
  in.check_list_size(count);
  in.charge(count / 16);
  List out;
  out.reserve(count);
  for (uint64_t k = 0; k < count; ++k) out.push_back(Value::integer(start + static_cast<int64_t>(k) * step));
  return Value::list(std::move(out));
}

Value fn_namespace(Interpreter& in, const Args& args, bool is_namespace) {
  auto d = std::make_shared<Dict>();
  d->is_namespace = is_namespace;
  for (const Value& v : args.positional) {
    if (!v.is_dict()) in.fail("namespace()/dict() takes a mapping or keyword arguments");
    for (const auto& [k, e] : v.as_dict().items) d->set(k, e);
  }
  for (const auto& [k, v] : args.named) {
    if (is_namespace && ((v.is_dict() && v.as_dict().is_namespace) || v.kind() == Value::Kind::kLoop)) {
      in.fail("a namespace cannot hold a namespace or a loop object");
    }
    d->set(k, v);
  }
  return Value::dict(std::move(d));
}

Value fn_raise_exception(Interpreter& in, const Args& args) {
  throw TemplateError{python_str(args.get(0, "message")), in.line(), /*raised=*/true};
}

Value fn_strftime_now(Interpreter& in, const Args& args) {
  const std::string& fmt = want_string(in, args.get(0, "format"), "strftime_now");
  if (fmt.size() > 256) in.fail("strftime_now: format too long");
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[1024];
  const size_t n = std::strftime(buf, sizeof(buf), fmt.c_str(), &local);
  return Value::string(std::string(buf, n));
}

Value make_builtin(const char* name, BuiltinFunction fn) {
  auto c = std::make_shared<Callable>();
  c->name = name;
  c->builtin = fn;
  return Value::callable(std::move(c));
}

}  // namespace

bool call_test(Interpreter& in, const std::string& name, const Value& v, const Args& args) {
  const auto& table = test_table();
  auto it = table.find(name);
  if (it == table.end()) in.fail("no test named '" + name + "'");
  return it->second(in, v, args);
}

Value call_method(Interpreter& in, const Value& obj, const std::string& name, const Args& args) {
  if (obj.is_string()) return string_method(in, obj.as_string(), name, args);
  if (obj.is_dict() && !obj.as_dict().is_namespace) return dict_method(in, obj, name, args);
  if (obj.kind() == Value::Kind::kLoop && name == "cycle") {
    if (args.positional.empty()) in.fail("loop.cycle() needs at least one value");
    return args.positional[obj.as_loop().index0 % args.positional.size()];
  }
  in.fail(std::string("'") + obj.type_name() + "' object has no method '" + name + "'");
}

const Value* find_global_function(std::string_view name) {
  static const std::unordered_map<std::string_view, Value> globals = {
      {"range", make_builtin("range", fn_range)},
      {"namespace",
       make_builtin("namespace", [](Interpreter& in, const Args& a) { return fn_namespace(in, a, true); })},
      {"dict", make_builtin("dict", [](Interpreter& in, const Args& a) { return fn_namespace(in, a, false); })},
      {"raise_exception", make_builtin("raise_exception", fn_raise_exception)},
      {"strftime_now", make_builtin("strftime_now", fn_strftime_now)},
  };
  auto it = globals.find(name);
  return it == globals.end() ? nullptr : &it->second;
}

}  // namespace baton::jinja

// The filters of jinja2 that chat templates use, with jinja2's arguments and
// transformers' `tojson` (json.dumps, ensure_ascii=False).
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <utf8proc.h>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/python_format.h"
#include "tokenizer/utf8.h"

namespace baton::jinja {

namespace {

using FilterFn = Value (*)(Interpreter&, const Value&, const Args&);

const std::string& want_string(Interpreter& in, const Value& v, const char* filter) {
  if (!v.is_string()) in.fail(std::string("filter '") + filter + "' needs a string, got " + v.type_name());
  return v.as_string();
}

std::string str_of(const Value& v) { return v.is_string() ? v.as_string() : python_str(v); }

// Unicode case mapping per code point (Python's str.upper/lower for the
// one-to-one mappings).
std::string map_case(std::string_view s, int (*fn)(utf8proc_int32_t)) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    auto step = tokenizer::utf8_step(s, i);
    if (step.kind != tokenizer::Utf8Step::Kind::kValid) {
      out.append(s.substr(i, std::max<size_t>(step.num_bytes, 1)));
      i += std::max<size_t>(step.num_bytes, 1);
      continue;
    }
    tokenizer::append_utf8(out, static_cast<char32_t>(fn(static_cast<utf8proc_int32_t>(step.code_point))));
    i += step.num_bytes;
  }
  return out;
}
int to_upper(utf8proc_int32_t c) { return utf8proc_toupper(c); }
int to_lower(utf8proc_int32_t c) { return utf8proc_tolower(c); }

// attribute="a.b" (or an integer index) looked up in each item.
Value lookup_path(Interpreter& in, const Value& item, const Value& path) {
  if (path.is_number()) return get_item(in, item, path);
  std::string_view p = path.is_string() ? std::string_view(path.as_string()) : std::string_view();
  Value cur = item;
  while (!p.empty()) {
    const size_t dot = p.find('.');
    const std::string part(p.substr(0, dot));
    if (!cur.is_dict()) return Value::undefined(part);
    cur = get_attribute(in, cur, part);
    p = dot == std::string_view::npos ? std::string_view() : p.substr(dot + 1);
  }
  return cur;
}

Args rest_args(const Args& args, size_t from) {
  Args rest;
  for (size_t k = from; k < args.positional.size(); ++k) rest.positional.push_back(args.positional[k]);
  rest.named = args.named;
  return rest;
}

// select / reject / selectattr / rejectattr.
Value select_items(Interpreter& in, const Value& v, const Args& args, bool by_attr, bool keep) {
  auto items = iterate(in, v);
  const Value attr = by_attr ? args.get(0, "attribute") : Value();
  const size_t test_pos = by_attr ? 1 : 0;
  const Value& test = args.get(test_pos, "");
  Args test_args = rest_args(args, test_pos + 1);
  List out;
  in.charge(items->size());
  for (const Value& item : *items) {
    const Value subject = by_attr ? lookup_path(in, item, attr) : item;
    const bool pass = test.is_string() ? in.apply_test(test.as_string(), subject, test_args) : subject.truthy();
    if (pass == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_map(Interpreter& in, const Value& v, const Args& args) {
  auto items = iterate(in, v);
  List out;
  out.reserve(items->size());
  in.charge(items->size());
  const Value& attribute = args.get(SIZE_MAX, "attribute");
  if (!attribute.is_undefined()) {
    const Value& dflt = args.get(SIZE_MAX, "default");
    for (const Value& item : *items) {
      Value got = lookup_path(in, item, attribute);
      out.push_back(got.is_undefined() && !dflt.is_undefined() ? dflt : got);
    }
    return Value::list(std::move(out));
  }
  const Value& filter = args.get(0, "");
  if (!filter.is_string()) in.fail("map needs a filter name or attribute=");
  Args filter_args = rest_args(args, 1);
  for (const Value& item : *items) out.push_back(in.apply_filter(filter.as_string(), item, filter_args));
  return Value::list(std::move(out));
}

Value f_join(Interpreter& in, const Value& v, const Args& args) {
  auto items = iterate(in, v);
  const Value& sep = args.get(0, "d");
  const Value& attribute = args.get(1, "attribute");
  const std::string separator = sep.is_undefined() ? "" : str_of(sep);
  std::string out;
  for (size_t k = 0; k < items->size(); ++k) {
    if (k > 0) out += separator;
    append_python_str(out, attribute.is_undefined() ? (*items)[k] : lookup_path(in, (*items)[k], attribute));
    in.check_string_size(out.size());
  }
  in.charge(out.size() / 1024 + items->size());
  return Value::string(std::move(out));
}

Value f_tojson(Interpreter& in, const Value& v, const Args& args) {
  const Value& indent = args.get(0, "indent");
  const Value& sort_keys = args.get(SIZE_MAX, "sort_keys");
  const Value& ensure_ascii = args.get(SIZE_MAX, "ensure_ascii");
  if (ensure_ascii.truthy()) in.fail("tojson: ensure_ascii=True is not supported");
  if (!args.get(SIZE_MAX, "separators").is_undefined()) in.fail("tojson: custom separators are not supported");
  std::optional<int> ind;
  if (indent.is_number()) ind = static_cast<int>(std::clamp<int64_t>(indent.as_int(), 0, 64));
  if (v.depth() > kMaxValueDepth) in.fail("tojson: the value nests too deeply");
  std::string out, what;
  if (!append_python_json(out, v, ind, sort_keys.truthy(), what)) in.fail("tojson: " + what);
  in.check_string_size(out.size());
  in.charge(out.size() / 1024);
  return Value::string(std::move(out));
}

Value f_default(Interpreter&, const Value& v, const Args& args) {
  const Value& dflt = args.get(0, "default_value");
  const bool boolean = args.get(1, "boolean").truthy();
  if (v.is_undefined() || (boolean && !v.truthy())) return dflt.is_undefined() ? Value::string("") : dflt;
  return v;
}

Value f_length(Interpreter& in, const Value& v, const Args&) {
  switch (v.kind()) {
    case Value::Kind::kString: {
      int64_t n = 0;
      for (char c : v.as_string()) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
      return Value::integer(n);
    }
    case Value::Kind::kList: return Value::integer(static_cast<int64_t>(v.as_list().size()));
    case Value::Kind::kDict: return Value::integer(static_cast<int64_t>(v.as_dict().items.size()));
    case Value::Kind::kUndefined: return Value::integer(0);
    default: in.fail(std::string("object of type '") + v.type_name() + "' has no len()");
  }
}

Value f_items(Interpreter& in, const Value& v, const Args&) {
  if (v.is_undefined()) return Value::list(List{});
  if (!v.is_dict()) in.fail(std::string("filter 'items' needs a mapping, got ") + v.type_name());
  List out;
  for (const auto& [k, e] : v.as_dict().items) out.push_back(Value::list(List{Value::string(k), e}));
  return Value::list(std::move(out));
}

Value f_sort(Interpreter& in, const Value& v, const Args& args) {
  List items = *iterate(in, v);
  const bool reverse = args.get(0, "reverse").truthy();
  const bool case_sensitive = args.get(1, "case_sensitive").truthy();
  const Value& attribute = args.get(2, "attribute");
  in.charge(items.size() * 4);
  auto key = [&](const Value& item) {
    Value k = attribute.is_undefined() ? item : lookup_path(in, item, attribute);
    if (!case_sensitive && k.is_string()) return Value::string(map_case(k.as_string(), to_lower));
    return k;
  };
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value& item : items) keyed.emplace_back(key(item), item);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? less_than(in, b.first, a.first) : less_than(in, a.first, b.first);
  });
  List out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::list(std::move(out));
}

Value f_dictsort(Interpreter& in, const Value& v, const Args& args) {
  Args sort_args;
  sort_args.named = {
      {"case_sensitive", args.get(0, "case_sensitive")},
      {"reverse", args.get(2, "reverse")},
      {"attribute", Value::integer(args.get(1, "by").is_string() && args.get(1, "by").as_string() == "value")}};
  return f_sort(in, f_items(in, v, {}), sort_args);
}

Value f_unique(Interpreter& in, const Value& v, const Args& args) {
  auto items = iterate(in, v);
  const Value& attribute = args.get(1, "attribute");
  List out;
  std::vector<Value> seen;
  in.charge(items->size() * 4);
  for (const Value& item : *items) {
    Value k = attribute.is_undefined() ? item : lookup_path(in, item, attribute);
    if (k.is_string() && !args.get(0, "case_sensitive").truthy()) k = Value::string(map_case(k.as_string(), to_lower));
    bool dup = false;
    for (const Value& s : seen) dup = dup || values_equal(s, k);
    if (dup) continue;
    seen.push_back(std::move(k));
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_indent(Interpreter& in, const Value& v, const Args& args) {
  const std::string& s = want_string(in, v, "indent");
  const Value& width = args.get(0, "width");
  std::string pad = width.is_string()
                        ? width.as_string()
                        : std::string(
                              static_cast<size_t>(std::clamp<int64_t>(width.is_number() ? width.as_int() : 4, 0, 256)),
                              ' ');
  const bool first = args.get(1, "first").truthy();
  const bool blank = args.get(2, "blank").truthy();
  std::string out;
  size_t pos = 0;
  bool is_first = true;
  while (pos <= s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    std::string_view line(s.data() + pos, nl - pos);
    if (!is_first) out += '\n';
    if ((is_first ? first : true) && (blank || !line.empty())) out += pad;
    out += line;
    in.check_string_size(out.size());
    is_first = false;
    pos = nl + 1;
  }
  return Value::string(std::move(out));
}

Value f_replace(Interpreter& in, const Value& v, const Args& args) {
  const std::string s = str_of(v);
  const std::string from = str_of(args.get(0, "old"));
  const std::string to = str_of(args.get(1, "new"));
  const Value& count = args.get(2, "count");
  int64_t left = count.is_number() ? count.as_int() : -1;
  std::string out;
  size_t pos = 0;
  if (from.empty()) {  // Python inserts `to` around every character
    in.check_string_size(s.size() * (to.size() + 1) + to.size());
  }
  while (left != 0) {
    size_t hit = from.empty() ? (pos <= s.size() ? pos : std::string::npos) : s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    in.check_string_size(out.size());
    if (from.empty()) {
      if (hit == s.size()) {
        pos = s.size() + 1;
        break;
      }
      out += s[hit];
      pos = hit + 1;
    } else {
      pos = hit + from.size();
    }
    if (left > 0) --left;
  }
  if (pos <= s.size()) out.append(s, pos, std::string::npos);
  in.check_string_size(out.size());
  in.charge(out.size() / 1024);
  return Value::string(std::move(out));
}

Value f_first_last(Interpreter& in, const Value& v, bool first) {
  auto items = iterate(in, v);
  if (items->empty()) return Value::undefined(first ? "first" : "last");
  return first ? items->front() : items->back();
}

// A float's integer part, when int64 holds it.
std::optional<int64_t> truncate_float(double d) {
  if (!std::isfinite(d) || d >= 9.2e18 || d <= -9.2e18) return std::nullopt;
  return static_cast<int64_t>(d);
}

Value f_int(Interpreter&, const Value& v, const Args& args) {
  const Value dflt = args.get(0, "default").is_undefined() ? Value::integer(0) : args.get(0, "default");
  if (v.is_float()) {
    auto n = truncate_float(v.as_float());
    return n ? Value::integer(*n) : dflt;
  }
  if (v.is_number()) return Value::integer(v.as_int());
  if (v.is_string()) {
    const std::string& s = v.as_string();
    try {
      size_t used = 0;
      const long long n = std::stoll(s, &used, 10);
      if (used == s.size()) return Value::integer(n);
    } catch (const std::exception&) {
    }
    try {  // int(float(value)), as jinja2 falls back to
      size_t used = 0;
      const double d = std::stod(s, &used);
      auto n = truncate_float(d);
      if (used == s.size() && n) return Value::integer(*n);
    } catch (const std::exception&) {
    }
  }
  return dflt;
}

Value f_float(Interpreter&, const Value& v, const Args& args) {
  const Value& dflt = args.get(0, "default");
  if (v.is_number()) return Value::number(v.as_float());
  if (v.is_string()) {
    try {
      size_t used = 0;
      const double d = std::stod(v.as_string(), &used);
      if (used == v.as_string().size()) return Value::number(d);
    } catch (const std::exception&) {
    }
  }
  return dflt.is_undefined() ? Value::number(0.0) : dflt;
}

Value f_escape(Interpreter& in, const Value& v, const Args&) {
  std::string out;
  for (char c : str_of(v)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  in.check_string_size(out.size());
  return Value::string(std::move(out));
}

Value f_sum(Interpreter& in, const Value& v, const Args& args) {
  auto items = iterate(in, v);
  const Value& attribute = args.get(0, "attribute");
  Value total = args.get(1, "start");
  if (total.is_undefined()) total = Value::integer(0);
  for (const Value& item : *items) {
    total = binary_op(in, "+", total, attribute.is_undefined() ? item : lookup_path(in, item, attribute));
  }
  return total;
}

Value f_min_max(Interpreter& in, const Value& v, const Args& args, bool want_max) {
  auto items = iterate(in, v);
  if (items->empty()) return Value::undefined(want_max ? "max" : "min");
  const Value& attribute = args.get(1, "attribute");
  auto key = [&](const Value& item) { return attribute.is_undefined() ? item : lookup_path(in, item, attribute); };
  const Value* best = &items->front();
  for (const Value& item : *items) {
    if (want_max ? less_than(in, key(*best), key(item)) : less_than(in, key(item), key(*best))) best = &item;
  }
  return *best;
}

Value f_title(Interpreter&, const Value& v, bool only_first) {
  const std::string s = str_of(v);
  std::string out;
  bool word_start = true;
  bool first = true;
  for (size_t i = 0; i < s.size();) {
    auto step = tokenizer::utf8_step(s, i);
    const size_t n = std::max<size_t>(step.num_bytes, 1);
    if (step.kind != tokenizer::Utf8Step::Kind::kValid) {
      out.append(s, i, n);
      i += n;
      continue;
    }
    const auto cp = static_cast<utf8proc_int32_t>(step.code_point);
    const bool alpha = utf8proc_category(cp) <= UTF8PROC_CATEGORY_LO && utf8proc_category(cp) >= UTF8PROC_CATEGORY_LU;
    char32_t mapped;
    if (only_first) {
      mapped = static_cast<char32_t>(first ? utf8proc_toupper(cp) : utf8proc_tolower(cp));
    } else {
      mapped = static_cast<char32_t>(alpha ? (word_start ? utf8proc_toupper(cp) : utf8proc_tolower(cp)) : cp);
      word_start = !alpha;
    }
    tokenizer::append_utf8(out, mapped);
    first = false;
    i += n;
  }
  return Value::string(std::move(out));
}

const std::unordered_map<std::string, FilterFn>& filter_table() {
  static const std::unordered_map<std::string, FilterFn> table = {
      {"tojson", f_tojson},
      {"trim", [](Interpreter& in, const Value& v,
                  const Args& a) { return Value::string(python_strip(str_of(v), a.get(0, "chars"), true, true)); }},
      {"length", f_length},
      {"count", f_length},
      {"items", f_items},
      {"map", f_map},
      {"join", f_join},
      {"select", [](Interpreter& in, const Value& v, const Args& a) { return select_items(in, v, a, false, true); }},
      {"reject", [](Interpreter& in, const Value& v, const Args& a) { return select_items(in, v, a, false, false); }},
      {"selectattr", [](Interpreter& in, const Value& v, const Args& a) { return select_items(in, v, a, true, true); }},
      {"rejectattr",
       [](Interpreter& in, const Value& v, const Args& a) { return select_items(in, v, a, true, false); }},
      {"upper", [](Interpreter&, const Value& v, const Args&) { return Value::string(map_case(str_of(v), to_upper)); }},
      {"lower", [](Interpreter&, const Value& v, const Args&) { return Value::string(map_case(str_of(v), to_lower)); }},
      {"title", [](Interpreter& in, const Value& v, const Args&) { return f_title(in, v, false); }},
      {"capitalize", [](Interpreter& in, const Value& v, const Args&) { return f_title(in, v, true); }},
      {"replace", f_replace},
      {"default", f_default},
      {"d", f_default},
      {"first", [](Interpreter& in, const Value& v, const Args&) { return f_first_last(in, v, true); }},
      {"last", [](Interpreter& in, const Value& v, const Args&) { return f_first_last(in, v, false); }},
      {"list", [](Interpreter& in, const Value& v,
                  const Args&) { return v.is_list() ? v : Value::list(List(*iterate(in, v))); }},
      {"string", [](Interpreter&, const Value& v, const Args&) { return Value::string(str_of(v)); }},
      {"safe", [](Interpreter&, const Value& v, const Args&) { return v; }},
      {"escape", f_escape},
      {"e", f_escape},
      {"int", f_int},
      {"float", f_float},
      {"abs",
       [](Interpreter& in, const Value& v, const Args&) {
         if (v.is_float()) return Value::number(std::fabs(v.as_float()));
         if (!v.is_number()) in.fail(std::string("bad operand type for abs(): '") + v.type_name() + "'");
         if (v.as_int() == INT64_MIN) in.fail("integer overflow in abs()");
         return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
       }},
      {"round",
       [](Interpreter& in, const Value& v, const Args& a) {
         if (!v.is_number()) in.fail("filter 'round' needs a number");
         const Value& p = a.get(0, "precision");
         const double scale = std::pow(10.0, p.is_number() ? static_cast<double>(p.as_int()) : 0.0);
         const Value& method = a.get(1, "method");
         const double x = v.as_float() * scale;
         double r = std::nearbyint(x);  // Python's round: half to even
         if (method.is_string() && method.as_string() == "floor") r = std::floor(x);
         if (method.is_string() && method.as_string() == "ceil") r = std::ceil(x);
         return Value::number(r / scale);
       }},
      {"reverse",
       [](Interpreter& in, const Value& v, const Args&) {
         if (v.is_string()) return slice_value(in, v, Value(), Value(), Value::integer(-1));
         List items = *iterate(in, v);
         std::reverse(items.begin(), items.end());
         return Value::list(std::move(items));
       }},
      {"sort", f_sort},
      {"dictsort", f_dictsort},
      {"unique", f_unique},
      {"indent", f_indent},
      {"sum", f_sum},
      {"min", [](Interpreter& in, const Value& v, const Args& a) { return f_min_max(in, v, a, false); }},
      {"max", [](Interpreter& in, const Value& v, const Args& a) { return f_min_max(in, v, a, true); }},
      {"attr",
       [](Interpreter& in, const Value& v, const Args& a) {
         // Attributes only: a dict's items are not attributes.
         if (v.is_dict() && !v.as_dict().is_namespace) return Value::undefined(str_of(a.get(0, "name")));
         return get_attribute(in, v, str_of(a.get(0, "name")));
       }},
      {"wordcount",
       [](Interpreter&, const Value& v, const Args&) {
         int64_t n = 0;
         bool in_word = false;
         for (char c : str_of(v)) {
           const bool word = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80);
           n += word && !in_word;
           in_word = word;
         }
         return Value::integer(n);
       }},
  };
  return table;
}

}  // namespace

Value call_filter(Interpreter& in, const std::string& name, const Value& v, const Args& args) {
  const auto& table = filter_table();
  auto it = table.find(name);
  if (it == table.end()) in.fail("no filter named '" + name + "'");
  return it->second(in, v, args);
}

}  // namespace baton::jinja

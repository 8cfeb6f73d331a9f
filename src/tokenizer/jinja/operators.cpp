// Operators, item/attribute access, slicing and iteration (see builtins.h).
#include <algorithm>
#include <cmath>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/python_format.h"
#include "tokenizer/utf8.h"

namespace baton::jinja {

namespace {

// Byte offsets of each code point of s, plus s.size() at the end.
std::vector<size_t> code_point_offsets(std::string_view s) {
  std::vector<size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    offsets.push_back(i);
    auto step = tokenizer::utf8_step(s, i);
    i += std::max<size_t>(step.num_bytes, 1);
  }
  offsets.push_back(s.size());
  return offsets;
}

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

[[noreturn]] void unsupported(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
  in.fail("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
}

void require_defined(Interpreter& in, const Value& v) {
  if (v.is_undefined()) in.fail("'" + v.undefined_name() + "' is undefined");
}

Value arithmetic(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
  const bool ints = a.is_number() && b.is_number() && !a.is_float() && !b.is_float();
  if (ints) {
    const int64_t x = a.as_int();
    const int64_t y = b.as_int();
    int64_t r = 0;
    if (op == "+" && !__builtin_add_overflow(x, y, &r)) return Value::integer(r);
    if (op == "-" && !__builtin_sub_overflow(x, y, &r)) return Value::integer(r);
    if (op == "*" && !__builtin_mul_overflow(x, y, &r)) return Value::integer(r);
    if (op == "//" || op == "%") {
      if (y == 0) in.fail("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) in.fail("integer overflow");
      int64_t q = x / y;
      int64_t m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return Value::integer(op == "//" ? q : m);
    }
    if (op == "**" && y >= 0) {
      int64_t acc = 1;
      for (int64_t k = 0; k < y; ++k) {
        if (__builtin_mul_overflow(acc, x, &acc)) in.fail("integer overflow in **");
        if (acc == 0 || acc == 1) break;
      }
      return Value::integer(acc);
    }
    if (op != "/" && op != "**") in.fail("integer overflow in " + op);
  }
  const double x = a.as_float();
  const double y = b.as_float();
  if (op == "+") return Value::number(x + y);
  if (op == "-") return Value::number(x - y);
  if (op == "*") return Value::number(x * y);
  if (op == "**") return Value::number(std::pow(x, y));
  if (y == 0) in.fail("float division by zero");
  if (op == "/") return Value::number(x / y);
  if (op == "//") return Value::number(std::floor(x / y));
  double m = std::fmod(x, y);
  if (m != 0 && ((m < 0) != (y < 0))) m += y;
  return Value::number(m);
}

Value repeat(Interpreter& in, const Value& seq, int64_t times) {
  if (times <= 0) return seq.is_string() ? Value::string("") : Value::list(List{});
  const uint64_t n = static_cast<uint64_t>(times);
  if (seq.is_string()) {
    const std::string& s = seq.as_string();
    if (!s.empty() && n > (1ull << 40) / s.size()) in.check_string_size(SIZE_MAX);
    in.check_string_size(s.size() * n);
    in.charge(s.size() * n / 1024);
    std::string out;
    out.reserve(s.size() * n);
    for (uint64_t k = 0; k < n; ++k) out += s;
    return Value::string(std::move(out));
  }
  const List& l = seq.as_list();
  if (!l.empty() && n > (1ull << 40) / l.size()) in.check_list_size(SIZE_MAX);
  in.check_list_size(l.size() * n);
  in.charge(l.size() * n);
  List out;
  out.reserve(l.size() * n);
  for (uint64_t k = 0; k < n; ++k) out.insert(out.end(), l.begin(), l.end());
  return Value::list(std::move(out));
}

bool contains(Interpreter& in, const Value& haystack, const Value& needle) {
  if (haystack.is_string()) {
    if (!needle.is_string())
      in.fail("'in <string>' requires string as left operand, not " + std::string(needle.type_name()));
    return haystack.as_string().find(needle.as_string()) != std::string::npos;
  }
  if (haystack.is_list()) {
    in.charge(haystack.as_list().size() / 16);
    for (const Value& v : haystack.as_list()) {
      if (values_equal(v, needle)) return true;
    }
    return false;
  }
  if (haystack.is_dict()) return needle.is_string() && haystack.as_dict().find(needle.as_string()) != nullptr;
  if (haystack.is_undefined()) return false;
  in.fail("argument of type '" + std::string(haystack.type_name()) + "' is not iterable");
}

}  // namespace

bool less_than(Interpreter& in, const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_list() && b.is_list()) {
    const List& x = a.as_list();
    const List& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!values_equal(x[i], y[i])) return less_than(in, x[i], y[i]);
    }
    return x.size() < y.size();
  }
  unsupported(in, "<", a, b);
}

Value binary_op(Interpreter& in, const std::string& op, const Value& a, const Value& b) {
  // Dispatch on the first character: this runs for every operator a render meets.
  switch (op[0]) {
    case '=': return Value::boolean(values_equal(a, b));
    case '!': return Value::boolean(!values_equal(a, b));
    case '~': {
      std::string s = python_str(a);
      append_python_str(s, b);
      return Value::string(std::move(s));
    }
    case 'i': return Value::boolean(contains(in, b, a));
    case 'n': return Value::boolean(!contains(in, b, a));  // "not in"
    case '<':
    case '>':
      require_defined(in, a);
      require_defined(in, b);
      if (op == "<") return Value::boolean(less_than(in, a, b));
      if (op == ">") return Value::boolean(less_than(in, b, a));
      if (op == "<=") return Value::boolean(!less_than(in, b, a));
      return Value::boolean(!less_than(in, a, b));
    default: break;
  }
  require_defined(in, a);
  require_defined(in, b);
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      in.check_string_size(a.as_string().size() + b.as_string().size());
      std::string s;
      s.reserve(a.as_string().size() + b.as_string().size());
      s += a.as_string();
      s += b.as_string();
      return Value::string(std::move(s));
    }
    if (a.is_list() && b.is_list()) {
      in.check_list_size(a.as_list().size() + b.as_list().size());
      in.charge(a.as_list().size() + b.as_list().size());
      List l = a.as_list();
      l.insert(l.end(), b.as_list().begin(), b.as_list().end());
      return Value::list(std::move(l));
    }
  }
  if (op == "*") {
    if ((a.is_string() || a.is_list()) && b.is_number() && !b.is_float()) return repeat(in, a, b.as_int());
    if ((b.is_string() || b.is_list()) && a.is_number() && !a.is_float()) return repeat(in, b, a.as_int());
  }
  if (a.is_number() && b.is_number()) return arithmetic(in, op, a, b);
  unsupported(in, op, a, b);
}

Value get_attribute(Interpreter& in, const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kDict: {
      const Value* v = obj.as_dict().find(name);
      return v != nullptr ? *v : Value::undefined(name);
    }
    case Value::Kind::kLoop: {
      const LoopState& s = obj.as_loop();
      const size_t n = s.items->size();
      if (name == "index0") return Value::integer(static_cast<int64_t>(s.index0));
      if (name == "index") return Value::integer(static_cast<int64_t>(s.index0 + 1));
      if (name == "revindex0") return Value::integer(static_cast<int64_t>(n - s.index0 - 1));
      if (name == "revindex") return Value::integer(static_cast<int64_t>(n - s.index0));
      if (name == "first") return Value::boolean(s.index0 == 0);
      if (name == "last") return Value::boolean(s.index0 + 1 == n);
      if (name == "length") return Value::integer(static_cast<int64_t>(n));
      if (name == "depth0") return Value::integer(static_cast<int64_t>(s.depth0));
      if (name == "depth") return Value::integer(static_cast<int64_t>(s.depth0 + 1));
      if (name == "previtem") return s.index0 > 0 ? (*s.items)[s.index0 - 1] : Value::undefined("previtem");
      if (name == "nextitem") return s.index0 + 1 < n ? (*s.items)[s.index0 + 1] : Value::undefined("nextitem");
      return Value::undefined(name);
    }
    case Value::Kind::kUndefined: in.fail("'" + obj.undefined_name() + "' is undefined (looking up '" + name + "')");
    default: return Value::undefined(name);
  }
}

Value get_item(Interpreter& in, const Value& obj, const Value& key) {
  if (obj.is_dict()) {
    if (!key.is_string()) return Value::undefined(python_str(key));
    const Value* v = obj.as_dict().find(key.as_string());
    return v != nullptr ? *v : Value::undefined(key.as_string());
  }
  if (obj.is_list() || obj.is_string()) {
    if (!key.is_number() || key.is_float()) {
      if (key.is_string()) return get_attribute(in, obj, key.as_string());
      in.fail(std::string("indices must be integers, not ") + key.type_name());
    }
    int64_t i = key.as_int();
    if (obj.is_list()) {
      const auto n = static_cast<int64_t>(obj.as_list().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined("index " + std::to_string(key.as_int()));
      return obj.as_list()[static_cast<size_t>(i)];
    }
    const std::string& s = obj.as_string();
    if (is_ascii(s)) {
      const auto n = static_cast<int64_t>(s.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined("index " + std::to_string(key.as_int()));
      return Value::string(std::string(1, s[static_cast<size_t>(i)]));
    }
    auto offsets = code_point_offsets(s);
    const auto n = static_cast<int64_t>(offsets.size() - 1);
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined("index " + std::to_string(key.as_int()));
    return Value::string(s.substr(offsets[i], offsets[i + 1] - offsets[i]));
  }
  if (obj.is_undefined()) in.fail("'" + obj.undefined_name() + "' is undefined");
  if (key.is_string()) return get_attribute(in, obj, key.as_string());
  return Value::undefined("item");
}

Value slice_value(Interpreter& in, const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  auto as_index = [&](const Value& v) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_number() || v.is_float()) in.fail("slice indices must be integers or None");
    return v.as_int();
  };
  const int64_t step = as_index(step_v).value_or(1);
  if (step == 0) in.fail("slice step cannot be zero");
  std::vector<size_t> offsets;
  int64_t n = 0;
  if (obj.is_list()) {
    n = static_cast<int64_t>(obj.as_list().size());
  } else if (obj.is_string()) {
    if (is_ascii(obj.as_string())) {
      n = static_cast<int64_t>(obj.as_string().size());
    } else {
      offsets = code_point_offsets(obj.as_string());
      n = static_cast<int64_t>(offsets.size() - 1);
    }
  } else {
    in.fail(std::string("'") + obj.type_name() + "' object is not subscriptable");
  }
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t start = adjust(as_index(start_v), step < 0 ? n - 1 : 0);
  const int64_t stop = adjust(as_index(stop_v), step < 0 ? -1 : n);
  in.charge(static_cast<uint64_t>(n) / 16);
  if (obj.is_list()) {
    List out;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(obj.as_list()[i]);
    return Value::list(std::move(out));
  }
  const std::string& s = obj.as_string();
  std::string out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (offsets.empty()) {
      out += s[static_cast<size_t>(i)];
    } else {
      out.append(s, offsets[i], offsets[i + 1] - offsets[i]);
    }
  }
  return Value::string(std::move(out));
}

std::shared_ptr<const List> iterate(Interpreter& in, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kList: return v.list_ptr();
    case Value::Kind::kUndefined: return std::make_shared<const List>();
    case Value::Kind::kDict: {
      List keys;
      for (const auto& kv : v.as_dict().items) keys.push_back(Value::string(kv.first));
      return std::make_shared<const List>(std::move(keys));
    }
    case Value::Kind::kString: {
      const std::string& s = v.as_string();
      List chars;
      auto offsets = code_point_offsets(s);
      in.charge(offsets.size() / 16);
      for (size_t k = 0; k + 1 < offsets.size(); ++k) {
        chars.push_back(Value::string(s.substr(offsets[k], offsets[k + 1] - offsets[k])));
      }
      return std::make_shared<const List>(std::move(chars));
    }
    default: in.fail(std::string("'") + v.type_name() + "' object is not iterable");
  }
}

std::string python_strip(std::string_view s, const Value& chars, bool left, bool right) {
  auto strip_cp = [&](char32_t cp, std::string_view cp_bytes) {
    if (chars.is_string()) return chars.as_string().find(cp_bytes) != std::string::npos;
    // Python's str.isspace: Unicode White_Space and the four separators 0x1C-0x1F.
    return tokenizer::is_unicode_whitespace(cp) || (cp >= 0x1C && cp <= 0x1F);
  };
  size_t begin = 0;
  if (left) {
    while (begin < s.size()) {
      auto step = tokenizer::utf8_step(s, begin);
      if (step.kind != tokenizer::Utf8Step::Kind::kValid ||
          !strip_cp(step.code_point, s.substr(begin, step.num_bytes))) {
        break;
      }
      begin += step.num_bytes;
    }
  }
  size_t end = s.size();
  if (right) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
      auto step = tokenizer::utf8_step(s, start);
      if (step.kind != tokenizer::Utf8Step::Kind::kValid || start + step.num_bytes != end ||
          !strip_cp(step.code_point, s.substr(start, step.num_bytes))) {
        break;
      }
      end = start;
    }
  }
  return std::string(s.substr(begin, end - begin));
}

}  // namespace baton::jinja

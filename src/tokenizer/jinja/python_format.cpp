#include "tokenizer/jinja/python_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace baton::jinja {

namespace {

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  size_t run = 0;  // start of the characters copied as they are
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s, run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      }
    }
  }
  out.append(s, run, std::string::npos);
  out += '"';
}

// Python's repr(str): single quotes unless the text has ' and no ".
void append_repr_string(std::string& out, const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out += quote;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(u));
      out += buf;
    } else {
      out += c;
    }
  }
  out += quote;
}

void append_json_float(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "NaN";
  } else if (std::isinf(d)) {
    out += d > 0 ? "Infinity" : "-Infinity";
  } else {
    out += format_float(d);
  }
}

bool append_json(std::string& out, const Value& v, std::optional<int> indent, bool sort_keys, int level,
                 std::string& what) {
  using K = Value::Kind;
  auto newline = [&](int lvl) {
    out += '\n';
    out.append(static_cast<size_t>(*indent) * static_cast<size_t>(lvl), ' ');
  };
  const char* item_sep = indent ? "," : ", ";
  switch (v.kind()) {
    case K::kNone: out += "null"; return true;
    case K::kBool: out += v.as_bool() ? "true" : "false"; return true;
    case K::kInt: out += std::to_string(v.as_int()); return true;
    case K::kFloat: append_json_float(out, v.as_float()); return true;
    case K::kString: append_json_string(out, v.as_string()); return true;
    case K::kList: {
      const List& items = v.as_list();
      if (items.empty()) {
        out += "[]";
        return true;
      }
      out += '[';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += item_sep;
        if (indent) newline(level + 1);
        if (!append_json(out, items[i], indent, sort_keys, level + 1, what)) return false;
      }
      if (indent) newline(level);
      out += ']';
      return true;
    }
    case K::kDict: {
      const Dict& d = v.as_dict();
      if (d.items.empty()) {
        out += "{}";
        return true;
      }
      std::vector<const std::pair<std::string, Value>*> order;
      order.reserve(d.items.size());
      for (const auto& kv : d.items) order.push_back(&kv);
      if (sort_keys) {
        std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
      }
      out += '{';
      for (size_t i = 0; i < order.size(); ++i) {
        if (i > 0) out += item_sep;
        if (indent) newline(level + 1);
        append_json_string(out, order[i]->first);
        out += ": ";
        if (!append_json(out, order[i]->second, indent, sort_keys, level + 1, what)) return false;
      }
      if (indent) newline(level);
      out += '}';
      return true;
    }
    default: what = std::string("Object of type ") + v.type_name() + " is not JSON serializable"; return false;
  }
}

}  // namespace

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  // Shortest round-trip digits and exponent, then Python's layout: fixed
  // notation for 1e-4 <= |d| < 1e16, else d.ddde+XX.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const size_t e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  std::string sign;
  if (mantissa[0] == '-') {
    sign = "-";
    mantissa.erase(0, 1);
  }
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  if (exponent < -4 || exponent >= 16) {
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    return out + ebuf;
  }
  if (exponent < 0) return sign + "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  const size_t int_len = static_cast<size_t>(exponent) + 1;
  if (digits.size() <= int_len) return sign + digits + std::string(int_len - digits.size(), '0') + ".0";
  return sign + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

void append_python_str(std::string& out, const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kUndefined: return;
    case K::kString: out += v.as_string(); return;
    default: append_python_repr(out, v);
  }
}

void append_python_repr(std::string& out, const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kUndefined: return;
    case K::kNone: out += "None"; return;
    case K::kBool: out += v.as_bool() ? "True" : "False"; return;
    case K::kInt: out += std::to_string(v.as_int()); return;
    case K::kFloat: out += format_float(v.as_float()); return;
    case K::kString: append_repr_string(out, v.as_string()); return;
    case K::kList: {
      out += '[';
      bool first = true;
      for (const Value& e : v.as_list()) {
        if (!first) out += ", ";
        first = false;
        append_python_repr(out, e);
      }
      out += ']';
      return;
    }
    case K::kDict: {
      const Dict& d = v.as_dict();
      out += d.is_namespace ? "<Namespace {" : "{";
      bool first = true;
      for (const auto& [k, e] : d.items) {
        if (!first) out += ", ";
        first = false;
        append_repr_string(out, k);
        out += ": ";
        append_python_repr(out, e);
      }
      out += d.is_namespace ? "}>" : "}";
      return;
    }
    case K::kLoop: out += "<LoopContext>"; return;
    case K::kCallable: out += "<function>"; return;
  }
}

bool append_python_json(std::string& out, const Value& v, std::optional<int> indent, bool sort_keys,
                        std::string& what) {
  return append_json(out, v, indent, sort_keys, 0, what);
}

std::string python_str(const Value& v) {
  std::string out;
  append_python_str(out, v);
  return out;
}

}  // namespace baton::jinja

#include "tokenizer/jinja/lexer.h"

#include <cctype>
#include <cstdint>

#include "tokenizer/utf8.h"

namespace baton::jinja {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// \r\n and \r become \n; one trailing newline goes (keep_trailing_newline=False).
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

int count_lines(std::string_view s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Where the tag opened at `begin` (just after its opener) ends: the index of
// `closer`, skipping quoted strings. npos when unclosed.
size_t find_tag_end(const std::string& src, size_t begin, std::string_view closer) {
  char quote = 0;
  for (size_t i = begin; i < src.size(); ++i) {
    const char c = src[i];
    if (quote != 0) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (src.compare(i, closer.size(), closer) == 0) {
      return i;
    }
  }
  return std::string::npos;
}

// lstrip_blocks: spaces and tabs between the line start and a block tag go.
void lstrip_line(std::string& text, bool line_starting) {
  const size_t nl = text.rfind('\n');
  const size_t line_start = nl == std::string::npos ? 0 : nl + 1;
  if (line_start == 0 && !line_starting) return;
  if (line_start == text.size()) return;
  for (size_t i = line_start; i < text.size(); ++i) {
    if (!is_space(text[i])) return;
  }
  text.resize(line_start);
}

void rstrip_all(std::string& text) {
  while (!text.empty() && is_space(text.back())) text.pop_back();
}

}  // namespace

std::vector<Segment> split_template(std::string_view raw_source) {
  const std::string src = normalize_newlines(raw_source);
  std::vector<Segment> out;
  std::string text;
  int line = 1;
  int text_line = 1;
  bool line_starting = true;  // the last tag ended a line (or nothing came yet)
  size_t pos = 0;
  bool strip_next = false;  // the previous tag ended with '-'
  auto flush_text = [&] {
    if (!text.empty()) out.push_back({Segment::Kind::kText, std::move(text), text_line});
    text.clear();
  };
  while (pos < src.size()) {
    const size_t open = src.find('{', pos);
    size_t tag = std::string::npos;
    for (size_t p = open; p != std::string::npos && p + 1 < src.size(); p = src.find('{', p + 1)) {
      const char n = src[p + 1];
      if (n == '{' || n == '%' || n == '#') {
        tag = p;
        break;
      }
    }
    std::string_view chunk(src.data() + pos, (tag == std::string::npos ? src.size() : tag) - pos);
    if (strip_next) {
      size_t k = 0;
      while (k < chunk.size() && is_space(chunk[k])) ++k;
      line += count_lines(chunk.substr(0, k));
      if (k > 0 && chunk[k - 1] == '\n') line_starting = true;
      chunk.remove_prefix(k);
      strip_next = false;
    }
    if (text.empty()) text_line = line;
    text.append(chunk);
    line += count_lines(chunk);
    if (tag == std::string::npos) break;

    const char type = src[tag + 1];
    size_t inner = tag + 2;
    char sign = 0;
    if (inner < src.size() && (src[inner] == '-' || src[inner] == '+')) sign = src[inner++];
    if (sign == '-') {
      rstrip_all(text);
    } else if (sign != '+' && type != '{') {
      lstrip_line(text, line_starting || (text.empty() && out.empty()));
    }
    const std::string_view closer = type == '{' ? "}}" : type == '%' ? "%}" : "#}";
    size_t end = type == '#' ? src.find("#}", inner) : find_tag_end(src, inner, closer);
    if (end == std::string::npos) {
      throw TemplateError{std::string("unclosed ") + (type == '{' ? "'{{'" : type == '%' ? "'{%'" : "comment"), line};
    }
    size_t body_end = end;
    char end_sign = 0;
    if (end > inner && (src[end - 1] == '-' || src[end - 1] == '+')) {
      end_sign = src[end - 1];
      body_end = end - 1;
    }
    std::string body = src.substr(inner, body_end - inner);
    const int tag_line = line;
    line += count_lines(src.substr(tag, end + 2 - tag));
    pos = end + 2;

    if (type == '%') {
      // {% raw %} ... {% endraw %}: the text between is kept as is.
      size_t b = 0;
      while (b < body.size() && is_space(body[b])) ++b;
      size_t e = body.size();
      while (e > b && is_space(body[e - 1])) --e;
      if (body.compare(b, e - b, "raw") == 0) {
        const size_t close = src.find("endraw", pos);
        const size_t open_end = close == std::string::npos ? close : src.rfind("{%", close);
        const size_t close_end = close == std::string::npos ? close : src.find("%}", close);
        if (open_end == std::string::npos || close_end == std::string::npos || open_end < pos) {
          throw TemplateError{"'raw' block is not closed by 'endraw'", tag_line};
        }
        if (text.empty()) text_line = tag_line;
        text.append(src, pos, open_end - pos);
        line += count_lines(std::string_view(src).substr(pos, close_end + 2 - pos));
        pos = close_end + 2;
        line_starting = false;
        continue;
      }
    }
    if (end_sign == '-') {
      strip_next = true;
    } else if (type != '{' && end_sign != '+' && pos < src.size() && src[pos] == '\n') {
      ++pos;  // trim_blocks
      ++line;
    }
    line_starting = pos > 0 && src[pos - 1] == '\n';
    if (type == '#') continue;
    flush_text();
    out.push_back({type == '{' ? Segment::Kind::kExpression : Segment::Kind::kStatement, std::move(body), tag_line});
  }
  flush_text();
  return out;
}

namespace {

// Python string escapes inside a quoted literal.
size_t read_string(std::string_view s, size_t i, std::string& out, int line) {
  const char quote = s[i++];
  while (i < s.size() && s[i] != quote) {
    char c = s[i++];
    if (c != '\\' || i >= s.size()) {
      out += c;
      continue;
    }
    c = s[i++];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '0': out += '\0'; break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '\n': break;
      case 'x':
      case 'u':
      case 'U': {  // \xXX, \uXXXX, \UXXXXXXXX: a code point, written as UTF-8
        const size_t num_digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (size_t k = 0; k < num_digits; ++k) {
          const char h = i + k < s.size() ? s[i + k] : '\0';
          if (!std::isxdigit(static_cast<unsigned char>(h)))
            throw TemplateError{"bad \\" + std::string(1, c) + " escape", line};
          cp = cp * 16 +
               static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (h | 0x20) - 'a' + 10);
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) throw TemplateError{"escape outside Unicode", line};
        i += num_digits;
        tokenizer::append_utf8(out, static_cast<char32_t>(cp));
        break;
      }
      default: out += '\\'; out += c;
    }
  }
  if (i >= s.size()) throw TemplateError{"unterminated string literal", line};
  return i + 1;
}

}  // namespace

std::vector<Token> tokenize_tag(std::string_view s, int line) {
  static constexpr std::string_view kTwo[] = {"==", "!=", "<=", ">=", "//", "**"};
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    const size_t start = i;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
      out.push_back({Token::Kind::kName, std::string(s.substr(start, i - start)), start});
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      bool is_float = false;
      while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
      if (i + 1 < s.size() && s[i] == '.' && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        is_float = true;
        ++i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      }
      if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
        if (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
          is_float = true;
          i = j;
          while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        }
      }
      std::string digits;
      for (char d : s.substr(start, i - start)) {
        if (d != '_') digits += d;
      }
      out.push_back({is_float ? Token::Kind::kFloat : Token::Kind::kInt, digits, start});
    } else if (c == '\'' || c == '"') {
      std::string value;
      i = read_string(s, i, value, line);
      out.push_back({Token::Kind::kString, std::move(value), start});
    } else {
      std::string_view op;
      for (auto t : kTwo) {
        if (s.substr(i, 2) == t) op = t;
      }
      if (op.empty()) {
        if (std::string_view("+-*/%~()[]{}.,:|=<>").find(c) == std::string_view::npos) {
          throw TemplateError{std::string("unexpected character '") + c + "' in a tag", line};
        }
        op = s.substr(i, 1);
      }
      i += op.size();
      out.push_back({Token::Kind::kOperator, std::string(op), start});
    }
  }
  out.push_back({Token::Kind::kEnd, "", s.size()});
  return out;
}

}  // namespace baton::jinja

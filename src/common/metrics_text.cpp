#include "common/metrics_text.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace baton {

namespace {

bool is_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

// The value after the name (and labels): a float, "+Inf", "-Inf" or "NaN";
// an optional timestamp may follow.
bool parse_value(std::string_view s, double* out) {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  size_t j = i;
  while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
  std::string token(s.substr(i, j - i));
  if (token.empty()) return false;
  if (token == "+Inf" || token == "Inf") {
    *out = std::numeric_limits<double>::infinity();
  } else if (token == "-Inf") {
    *out = -std::numeric_limits<double>::infinity();
  } else if (token == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
  } else {
    char* end = nullptr;
    errno = 0;
    *out = std::strtod(token.c_str(), &end);
    if (end != token.c_str() + token.size() || errno == ERANGE) return false;
  }
  // Anything after the value must be a timestamp (an integer).
  while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
  for (; j < s.size(); ++j) {
    if (!((s[j] >= '0' && s[j] <= '9') || s[j] == '-')) return false;
  }
  return true;
}

}  // namespace

Result<std::map<std::string, double>> sum_metrics_by_name(std::string_view text) {
  std::map<std::string, double> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string_view::npos || line[start] == '#') continue;
    line = line.substr(start);
    auto bad = [&](const char* why) {
      return invalid_argument("metrics text, line {}: {}: '{:.120}'", line_no, why, line);
    };
    size_t i = 0;
    while (i < line.size() && is_name_char(line[i], i == 0)) ++i;
    if (i == 0) return bad("no metric name");
    std::string name(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      // Labels: skip to the closing brace, minding quoted values and escapes.
      bool quoted = false;
      size_t j = i + 1;
      for (; j < line.size(); ++j) {
        char c = line[j];
        if (quoted && c == '\\') {
          ++j;
        } else if (c == '"') {
          quoted = !quoted;
        } else if (!quoted && c == '}') {
          break;
        }
      }
      if (j >= line.size()) return bad("labels without a closing '}'");
      i = j + 1;
    }
    if (i >= line.size() || (line[i] != ' ' && line[i] != '\t')) return bad("no value after the name");
    double value = 0;
    if (!parse_value(line.substr(i), &value)) return bad("the value is not a number");
    out[name] += value;
  }
  return out;
}

}  // namespace baton

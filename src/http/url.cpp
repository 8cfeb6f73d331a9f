#include "http/url.h"

#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace baton::http {

std::string Url::host_port() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::string Url::to_string() const { return fmt::format("{}://{}{}", scheme, host_port(), target); }

Url Url::with_path(std::string_view path) const {
  Url out = *this;
  std::string base = target;
  std::string query;
  if (auto q = base.find('?'); q != std::string::npos) {
    query = base.substr(q);
    base.resize(q);
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string p(path);
  if (p.empty() || p.front() != '/') p.insert(p.begin(), '/');
  out.target = base + p + query;
  return out;
}

Result<Url> parse_url(std::string_view text) {
  Url url;
  auto sep = text.find("://");
  if (sep == std::string_view::npos) {
    return invalid_argument("URL '{}' has no scheme (expected http://host:port)", text);
  }
  url.scheme = std::string(text.substr(0, sep));
  for (auto& c : url.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (url.scheme == "https") {
    return unimplemented("URL '{}': https is not supported (plain http only)", text);
  }
  if (url.scheme != "http") return invalid_argument("URL '{}': unknown scheme '{}'", text, url.scheme);
  std::string_view rest = text.substr(sep + 3);
  auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return invalid_argument("URL '{}': user info is not supported", text);
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {  // [ipv6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos) return invalid_argument("URL '{}': unclosed '['", text);
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid_argument("URL '{}': junk after ']'", text);
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) return invalid_argument("URL '{}': missing host", text);
  if (!port_text.empty() || authority.ends_with(":")) {
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() || value == 0 ||
        value > 65535) {
      return invalid_argument("URL '{}': bad port '{}'", text, port_text);
    }
    url.port = static_cast<uint16_t>(value);
  }
  if (target.front() == '?') url.target = "/" + std::string(target);
  else url.target = std::string(target);
  return url;
}

}  // namespace baton::http

// URL parsing for the HTTP client: http://host[:port][/path][?query].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace baton::http {

struct Url {
  std::string scheme;  // "http" (https is rejected: the client speaks plain HTTP/1.1)
  std::string host;    // name or IPv4; IPv6 literals without the brackets
  uint16_t port = 80;
  std::string target;  // path plus query, always starting with '/'

  // "host:port", as sent in the Host header.
  std::string host_port() const;
  // The URL back as text, e.g. "http://127.0.0.1:8000/v1/completions".
  std::string to_string() const;
  // A copy with `path` joined onto this URL's path ("/v1" + "/completions").
  Url with_path(std::string_view path) const;
};

// Parses an absolute http URL. Errors name what is wrong ("missing host", ...).
Result<Url> parse_url(std::string_view text);

}  // namespace baton::http

// An error answered in OpenAI's shape:
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
#pragma once

#include <string>

#include "common/json.h"
#include "common/status.h"

namespace baton {

struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;      // the offending request field, "" for none (rendered null)
  std::string code;       // "" for none (rendered null)
  int retry_after_s = 0;  // > 0 adds a Retry-After header (503)

  Json to_json() const;
};

ApiError bad_request(std::string message, std::string param = "");

// Maps a Status from a lower layer: kInvalidArgument/kOutOfRange -> 400,
// kNotFound -> 404, kPermissionDenied -> 401, kResourceExhausted -> 503,
// kUnavailable -> 503, anything else -> 500.
ApiError api_error_from_status(const Status& status, std::string param = "");

}  // namespace baton

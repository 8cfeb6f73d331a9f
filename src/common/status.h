// Status and Result<T>: expected failures (bad input, peer down, timeout)
// travel as values; invariants use BATON_CHECK (check.h) instead.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace baton {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (maps to HTTP 400)
  kNotFound,            // a named thing does not exist (404)
  kOutOfRange,          // a value is beyond a limit (e.g. context length)
  kFailedPrecondition,  // the system is not in a state to do this
  kResourceExhausted,   // queue full, out of blocks (503)
  kUnavailable,         // a peer is down or unreachable
  kDeadlineExceeded,    // a timeout or an expired lease
  kDataLoss,            // corrupt or truncated data
  kAborted,             // the operation was cancelled
  kPermissionDenied,    // bad credentials (401)
  kUnimplemented,       // a feature this build or device lacks
  kInternal,            // a bug or an unexpected system error
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "INVALID_ARGUMENT: message", or "OK".
  std::string to_string() const;

  // Returns a copy whose message is prefixed with context ("loading x: ...").
  Status with_context(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename... Args>
Status make_status(StatusCode code, fmt::format_string<Args...> f, Args&&... args) {
  return Status(code, fmt::format(f, std::forward<Args>(args)...));
}

#define BATON_DEFINE_STATUS_FACTORY(name, code)                                   \
  template <typename... Args>                                                     \
  Status name(fmt::format_string<Args...> f, Args&&... args) {                    \
    return Status(StatusCode::code, fmt::format(f, std::forward<Args>(args)...)); \
  }
BATON_DEFINE_STATUS_FACTORY(invalid_argument, kInvalidArgument)
BATON_DEFINE_STATUS_FACTORY(not_found, kNotFound)
BATON_DEFINE_STATUS_FACTORY(out_of_range, kOutOfRange)
BATON_DEFINE_STATUS_FACTORY(failed_precondition, kFailedPrecondition)
BATON_DEFINE_STATUS_FACTORY(resource_exhausted, kResourceExhausted)
BATON_DEFINE_STATUS_FACTORY(unavailable, kUnavailable)
BATON_DEFINE_STATUS_FACTORY(deadline_exceeded, kDeadlineExceeded)
BATON_DEFINE_STATUS_FACTORY(data_loss, kDataLoss)
BATON_DEFINE_STATUS_FACTORY(aborted, kAborted)
BATON_DEFINE_STATUS_FACTORY(permission_denied, kPermissionDenied)
BATON_DEFINE_STATUS_FACTORY(unimplemented, kUnimplemented)
BATON_DEFINE_STATUS_FACTORY(internal_error, kInternal)
#undef BATON_DEFINE_STATUS_FACTORY

// Result<T>: a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.is_ok()) status_ = Status(StatusCode::kInternal, "Result built from an OK status");
  }

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace baton

#define BATON_CONCAT_INNER(a, b) a##b
#define BATON_CONCAT(a, b) BATON_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` is not OK.
#define BATON_RETURN_IF_ERROR(expr)           \
  do {                                        \
    ::baton::Status _baton_st = (expr);       \
    if (!_baton_st.is_ok()) return _baton_st; \
  } while (0)

// `BATON_ASSIGN_OR_RETURN(auto x, make_x());` unwraps a Result or returns its Status.
#define BATON_ASSIGN_OR_RETURN(lhs, expr) BATON_ASSIGN_OR_RETURN_IMPL(BATON_CONCAT(_baton_res_, __LINE__), lhs, expr)
#define BATON_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.is_ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

// Invariant checks: a failed check is a bug, so it aborts with a message.
// Expected failures use Status (status.h) instead.
#pragma once

#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace baton::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* expr, const std::string& msg);
}  // namespace baton::detail

// BATON_CHECK(cond) or BATON_CHECK(cond, "fmt {}", args...)
#define BATON_CHECK(cond, ...)                                                                                \
  do {                                                                                                        \
    if (!(cond)) [[unlikely]] {                                                                               \
      ::baton::detail::check_failed(__FILE__, __LINE__, #cond, ::fmt::format("" __VA_OPT__(, ) __VA_ARGS__)); \
    }                                                                                                         \
  } while (0)

#define BATON_CHECK_EQ(a, b) BATON_CHECK((a) == (b), "{} vs {}", (a), (b))
#define BATON_CHECK_LT(a, b) BATON_CHECK((a) < (b), "{} vs {}", (a), (b))
#define BATON_CHECK_LE(a, b) BATON_CHECK((a) <= (b), "{} vs {}", (a), (b))
#define BATON_CHECK_GE(a, b) BATON_CHECK((a) >= (b), "{} vs {}", (a), (b))
#define BATON_CHECK_OK(expr)                                       \
  do {                                                             \
    auto _baton_chk = (expr);                                      \
    BATON_CHECK(_baton_chk.is_ok(), "{}", _baton_chk.to_string()); \
  } while (0)

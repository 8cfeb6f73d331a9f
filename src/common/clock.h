// Clocks. Durations are measured on the monotonic clock; wall time only where
// a timestamp leaves the process (logs, reports, leases across hosts).
#pragma once

#include <chrono>
#include <cstdint>

namespace baton {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

inline int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch()).count();
}
inline double monotonic_s() { return static_cast<double>(monotonic_ns()) * 1e-9; }
inline int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Measures elapsed time from construction (or the last reset()).
class Stopwatch {
 public:
  Stopwatch() : start_(SteadyClock::now()) {}
  void reset() { start_ = SteadyClock::now(); }
  double elapsed_s() const { return std::chrono::duration<double>(SteadyClock::now() - start_).count(); }
  double elapsed_ms() const { return elapsed_s() * 1e3; }
  double elapsed_us() const { return elapsed_s() * 1e6; }

 private:
  TimePoint start_;
};

}  // namespace baton

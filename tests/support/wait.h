// Waiting on observable state instead of sleeping a fixed time: a test polls
// a condition (a port answering, a metric reaching a value, a log line) until
// it holds or the deadline passes.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

#include "common/clock.h"

namespace baton::testing {

// True as soon as pred() holds; false if it still does not after timeout_s.
inline bool wait_until(const std::function<bool()>& pred, double timeout_s, int poll_ms = 10) {
  Stopwatch sw;
  while (sw.elapsed_s() < timeout_s) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  return pred();
}

}  // namespace baton::testing

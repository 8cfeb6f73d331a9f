// Catches SIGINT/SIGTERM from construction on (so an early one is not lost);
// wait() blocks until one arrives and returns it. For an instance registered
// in discovery, which leaves the registry before the server's own graceful
// shutdown.
#pragma once

#include <memory>

namespace baton::instance {

class SignalWaiter {
 public:
  SignalWaiter();
  ~SignalWaiter();
  int wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::instance

// Polls GET /health on every instance of a pool at a fixed interval: a
// failing instance leaves the rotation, one that answers again comes back.
// An instance whose answer names another role (X-Baton-Role: an instance
// with --role-switching whose role was changed through its admin endpoint)
// moves to that role in the pool.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "router/instance_pool.h"

namespace baton::router {

class HealthChecker {
 public:
  HealthChecker(InstancePool& pool, double interval_s, double timeout_s = 1.0);
  ~HealthChecker();  // stops the thread
  void start();
  void stop();
  // One round over every instance, synchronously (tests, start-up).
  void check_all();

 private:
  void loop();

  InstancePool& pool_;
  const double interval_s_;
  const double timeout_s_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace baton::router

// LoaderPool: the decode side's pull threads. Tasks run in submission order
// on a fixed number of threads; stop() lets the queued tasks run (a task
// sees its own cancellation and returns at once) and joins the threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace baton {

class LoaderPool {
 public:
  explicit LoaderPool(int num_threads);
  ~LoaderPool();
  LoaderPool(const LoaderPool&) = delete;
  LoaderPool& operator=(const LoaderPool&) = delete;

  // False (and the task is dropped) once stop() has begun.
  bool submit(std::function<void()> task);
  // Runs what is queued, then joins the threads. Idempotent.
  void stop();

 private:
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace baton

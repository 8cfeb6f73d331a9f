// The router's view of etcd: reads every registered instance, then watches
// for joins and leaves, calling back on each (from its own thread). A broken
// watch is re-established from a fresh read, reporting what changed meanwhile.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "discovery/registration.h"

namespace baton::discovery {

struct WatcherCallbacks {
  std::function<void(const InstanceRecord&)> on_join;
  std::function<void(const InstanceRecord&)> on_leave;
};

class RegistryWatcher {
 public:
  RegistryWatcher(std::string endpoint, WatcherCallbacks callbacks);
  ~RegistryWatcher();
  // Reads the registry once (synchronously, so the router starts with it),
  // then watches from a thread.
  Status start();
  void stop();

 private:
  Status sync(int64_t* revision);
  void loop(int64_t revision);
  void apply_put(const std::string& key, const std::string& value);
  void apply_delete(const std::string& key);

  std::string endpoint_;
  WatcherCallbacks callbacks_;
  std::map<std::string, InstanceRecord> known_;  // key -> record; touched by one thread at a time
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace baton::discovery

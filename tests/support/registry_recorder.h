// Records what an etcd RegistryWatcher reports ("+ROLE URL" on join, "-ROLE
// URL" on leave), for tests that wait for a registry event.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "discovery/registry_watcher.h"
#include "support/wait.h"

namespace baton::testing {

class RegistryRecorder {
 public:
  discovery::WatcherCallbacks callbacks() {
    return {[this](const discovery::InstanceRecord& r) { add("+" + r.role + " " + r.url); },
            [this](const discovery::InstanceRecord& r) { add("-" + r.role + " " + r.url); }};
  }
  bool wait_for(const std::string& event, double timeout_s = 10.0) {
    return wait_until(
        [&] {
          std::lock_guard<std::mutex> lock(mu_);
          return events_.count(event) > 0;
        },
        timeout_s, 20);
  }

 private:
  void add(const std::string& e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.insert(e);
  }
  std::mutex mu_;
  std::set<std::string> events_;
};

}  // namespace baton::testing

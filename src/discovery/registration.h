// Keeps one instance registered in etcd: a key under a lease, kept alive from
// a thread; deregister() revokes the lease so the key goes at once (graceful
// leave); a process that dies lets the lease lapse, and the key goes after
// its TTL.
//
// Keys: /baton/instances/ROLE/URL-ENCODED-URL -> {"url", "role", "model"}.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "common/json.h"
#include "common/status.h"

namespace baton::discovery {

inline constexpr char kInstancePrefix[] = "/baton/instances/";

std::string instance_key(const std::string& role, const std::string& url);

struct InstanceRecord {
  std::string url;
  std::string role;  // agg, prefill, decode
  std::string model;
  Json to_json() const { return {{"url", url}, {"role", role}, {"model", model}}; }
  static Result<InstanceRecord> from_json_text(const std::string& text);
};

class Registration {
 public:
  // Registers now (an unreachable etcd is an error) and keeps the lease alive.
  static Result<std::unique_ptr<Registration>> start(const std::string& endpoint, InstanceRecord record, int ttl_s = 5);
  ~Registration();  // deregisters
  // Revokes the lease (the key disappears at once) and stops the keep-alive.
  void deregister();

 private:
  Registration() = default;
  void loop();

  std::string endpoint_;
  InstanceRecord record_;
  int ttl_s_ = 5;
  int64_t lease_id_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace baton::discovery

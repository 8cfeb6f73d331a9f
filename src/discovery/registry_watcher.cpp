#include "discovery/registry_watcher.h"

#include <set>

#include "common/log.h"
#include "discovery/etcd_client.h"

namespace baton::discovery {

RegistryWatcher::RegistryWatcher(std::string endpoint, WatcherCallbacks callbacks)
    : endpoint_(std::move(endpoint)), callbacks_(std::move(callbacks)) {}

RegistryWatcher::~RegistryWatcher() { stop(); }

void RegistryWatcher::apply_put(const std::string& key, const std::string& value) {
  auto record = InstanceRecord::from_json_text(value);
  if (!record.is_ok()) {
    BATON_LOG_WARN("etcd key {} holds a bad instance record: {}", key, record.status().message());
    return;
  }
  auto it = known_.find(key);
  if (it != known_.end() && it->second.url == record->url && it->second.role == record->role) return;
  known_[key] = *record;
  if (callbacks_.on_join) callbacks_.on_join(*record);
}

void RegistryWatcher::apply_delete(const std::string& key) {
  auto it = known_.find(key);
  if (it == known_.end()) return;
  InstanceRecord record = it->second;
  known_.erase(it);
  if (callbacks_.on_leave) callbacks_.on_leave(record);
}

Status RegistryWatcher::sync(int64_t* revision) {
  BATON_ASSIGN_OR_RETURN(EtcdClient etcd, EtcdClient::connect(endpoint_));
  BATON_ASSIGN_OR_RETURN(auto kvs, etcd.get_prefix(kInstancePrefix, revision));
  std::set<std::string> present;
  for (const auto& kv : kvs) {
    present.insert(kv.key);
    apply_put(kv.key, kv.value);
  }
  std::vector<std::string> gone;
  for (const auto& [key, record] : known_) {
    if (!present.count(key)) gone.push_back(key);
  }
  for (const auto& key : gone) apply_delete(key);
  return Status::ok();
}

Status RegistryWatcher::start() {
  int64_t revision = 0;
  BATON_RETURN_IF_ERROR(sync(&revision));
  thread_ = std::thread([this, revision] { loop(revision); });
  return Status::ok();
}

void RegistryWatcher::loop(int64_t revision) {
  while (!stop_.load()) {
    auto etcd = EtcdClient::connect(endpoint_);
    Status st = etcd.is_ok() ? etcd->watch_prefix(
                                   kInstancePrefix, revision + 1,
                                   [this, &revision](const WatchEvent& ev) {
                                     revision = std::max(revision, ev.kv.mod_revision);
                                     if (ev.type == WatchEvent::Type::kPut) {
                                       apply_put(ev.kv.key, ev.kv.value);
                                     } else {
                                       apply_delete(ev.kv.key);
                                     }
                                   },
                                   stop_, 0.2)
                             : etcd.status();
    if (stop_.load()) break;
    BATON_LOG_WARN("etcd watch broke ({}); re-reading the registry", st.message());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    int64_t fresh = 0;
    if (sync(&fresh).is_ok()) revision = fresh;
  }
}

void RegistryWatcher::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

}  // namespace baton::discovery

#include "discovery/registration.h"

#include "common/log.h"
#include "discovery/etcd_client.h"

namespace baton::discovery {

std::string instance_key(const std::string& role, const std::string& url) {
  std::string encoded;
  for (char c : url) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') {
      encoded += c;
    } else {
      encoded += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return std::string(kInstancePrefix) + role + "/" + encoded;
}

Result<InstanceRecord> InstanceRecord::from_json_text(const std::string& text) {
  BATON_ASSIGN_OR_RETURN(Json j, parse_json(text, "instance record"));
  InstanceRecord r;
  BATON_ASSIGN_OR_RETURN(r.url, json_require<std::string>(j, "url"));
  BATON_ASSIGN_OR_RETURN(r.role, json_require<std::string>(j, "role"));
  BATON_ASSIGN_OR_RETURN(r.model, json_get<std::string>(j, "model", ""));
  return r;
}

Result<std::unique_ptr<Registration>> Registration::start(const std::string& endpoint, InstanceRecord record,
                                                          int ttl_s) {
  BATON_ASSIGN_OR_RETURN(EtcdClient etcd, EtcdClient::connect(endpoint));
  std::unique_ptr<Registration> reg(new Registration());
  reg->endpoint_ = endpoint;
  reg->record_ = std::move(record);
  reg->ttl_s_ = std::max(2, ttl_s);
  BATON_ASSIGN_OR_RETURN(reg->lease_id_, etcd.grant_lease(reg->ttl_s_));
  BATON_RETURN_IF_ERROR(
      etcd.put(instance_key(reg->record_.role, reg->record_.url), reg->record_.to_json().dump(), reg->lease_id_));
  reg->thread_ = std::thread([r = reg.get()] { r->loop(); });
  BATON_LOG_INFO("registered {} {} in etcd {} (lease ttl {} s)", reg->record_.role, reg->record_.url, endpoint,
                 reg->ttl_s_);
  return reg;
}

Registration::~Registration() { deregister(); }

void Registration::loop() {
  auto etcd = EtcdClient::connect(endpoint_);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::duration<double>(ttl_s_ / 3.0), [this] { return stop_; });
    if (stop_ || !etcd.is_ok()) break;
    lock.unlock();
    auto ttl = etcd->keep_alive(lease_id_);
    if (!ttl.is_ok()) {
      // The lease lapsed (etcd restarted, or we were too slow): register anew.
      BATON_LOG_WARN("etcd keep-alive failed ({}); registering again", ttl.status().message());
      auto lease = etcd->grant_lease(ttl_s_);
      if (lease.is_ok()) {
        lease_id_ = *lease;
        Status st = etcd->put(instance_key(record_.role, record_.url), record_.to_json().dump(), lease_id_);
        if (!st.is_ok()) BATON_LOG_WARN("etcd put failed: {}", st.message());
      }
    }
    lock.lock();
  }
}

void Registration::deregister() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  auto etcd = EtcdClient::connect(endpoint_);
  if (etcd.is_ok()) {
    Status st = etcd->revoke_lease(lease_id_);
    if (!st.is_ok()) BATON_LOG_WARN("etcd lease revoke failed: {}", st.message());
  }
  BATON_LOG_INFO("deregistered {} {} from etcd", record_.role, record_.url);
}

}  // namespace baton::discovery

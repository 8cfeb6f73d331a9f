// What the OpenAI service asks of an instance whose role can change at run
// time (instance/role_switcher.h implements it; docs/pd.md "Roles that
// follow the load"): which requests the role admits now, and the admin
// endpoint GET/POST /v1/admin/role (authenticated as every /v1 route).
#pragma once

#include <memory>
#include <string>

#include "common/json.h"
#include "common/status.h"

namespace baton {

class RoleAdmin {
 public:
  virtual ~RoleAdmin() = default;

  // Any thread: whether a generation request with these kv_transfer_params
  // may start now. The ticket lives as long as the request (the service
  // drops it when the request's last output has gone): a drain waits for the
  // tickets of its old role. An error (UNAVAILABLE while the role drains or
  // cannot serve the request) refuses the request.
  virtual Result<std::shared_ptr<void>> admit(const Json& kv_transfer_params) = 0;
  // GET /v1/admin/role: the role and the current or last switch.
  virtual Json status() const = 0;
  // POST /v1/admin/role {"role": ..., "drain_timeout_s": ...}: starts a
  // switch and returns status(); INVALID_ARGUMENT names a bad field,
  // FAILED_PRECONDITION a switch already in flight.
  virtual Result<Json> request_switch(const Json& body) = 0;
  // The current role's name (agg, prefill, decode): GET /health reports it
  // in its X-Baton-Role header.
  virtual std::string role_name() const = 0;
};

}  // namespace baton

#include "backend/backend.h"

#include "common/check.h"

namespace baton {

Status Backend::submit(const StepInput& in) {
  BATON_CHECK(!submitted_.has_value(), "Backend::submit() called twice without wait()");
  submitted_.emplace(execute(in));
  return Status::ok();
}

Result<StepOutput> Backend::wait() {
  BATON_CHECK(submitted_.has_value(), "Backend::wait() without submit()");
  Result<StepOutput> out = std::move(*submitted_);
  submitted_.reset();
  return out;
}

}  // namespace baton

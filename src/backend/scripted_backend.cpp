#include "backend/scripted_backend.h"

#include "common/check.h"

namespace baton {

ScriptedBackend::ScriptedBackend(std::unique_ptr<Backend> inner, std::vector<std::vector<int32_t>> scripts,
                                 int32_t eos_token_id)
    : inner_(std::move(inner)), scripts_(std::move(scripts)), eos_token_id_(eos_token_id) {
  BATON_CHECK(!scripts_.empty());
}

Result<StepOutput> ScriptedBackend::execute(const StepInput& in) {
  BATON_ASSIGN_OR_RETURN(StepOutput out, inner_->execute(in));
  rewrite(in, &out);
  return out;
}

Status ScriptedBackend::submit(const StepInput& in) {
  submitted_ = &in;
  return inner_->submit(in);
}

Result<StepOutput> ScriptedBackend::wait() {
  BATON_ASSIGN_OR_RETURN(StepOutput out, inner_->wait());
  if (submitted_) rewrite(*submitted_, &out);
  submitted_ = nullptr;
  return out;
}

void ScriptedBackend::rewrite(const StepInput& in, StepOutput* out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t k = 0; k < in.samples.size() && k < out->samples.size(); ++k) {
    const SampleRequest& s = in.samples[k];
    size_t script = 0;
    auto it = assigned_.find(s.prompt_ids);
    if (s.num_output_tokens == 0 || it == assigned_.end()) {
      script = next_script_++ % scripts_.size();
      assigned_[s.prompt_ids] = script;
    } else {
      script = it->second;
    }
    const std::vector<int32_t>& ids = scripts_[script];
    const size_t i = static_cast<size_t>(s.num_output_tokens);
    out->samples[k].token_id = i < ids.size() ? ids[i] : eos_token_id_;
    out->samples[k].top_logprobs.clear();
    if (i >= ids.size()) assigned_.erase(s.prompt_ids);
  }
}

}  // namespace baton

// samples_from_profile (step_time_model.h): the measured steps of a
// `baton profile` JSON document, row kind by row kind.
#include <fmt/format.h>

#include "planner/step_time_model.h"

namespace baton::planner {

namespace {

// Every number a row gives is checked before it is cast or fitted: counts of
// tokens and sequences in [0, kMaxCount], times in (0, kMaxMs].
constexpr double kMaxCount = 1e9, kMaxMs = 1e9, kMinMs = 1e-9;

Result<double> number(const Json& j, const char* key, double lo, double hi) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) {
    return invalid_argument("profile entry lacks a numeric '{}': {}", key, j.dump().substr(0, 200));
  }
  const double v = j[key].get<double>();
  if (!(v >= lo && v <= hi)) {
    return invalid_argument("profile entry's '{}' is {}, outside [{}, {}]: {}", key, v, lo, hi,
                            j.dump().substr(0, 200));
  }
  return v;
}
Result<double> count(const Json& j, const char* key) { return number(j, key, 0, kMaxCount); }
Result<double> millis(const Json& j, const char* key) { return number(j, key, kMinMs, kMaxMs); }
// An optional count: 0 when the row has none.
Result<double> count_or_zero(const Json& j, const char* key) { return j.contains(key) ? count(j, key) : 0.0; }

double number_or(const Json& j, const char* key, double fallback) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

// The rows of models[].KEY, skipped ones (KV did not fit) left out.
std::vector<const Json*> rows_of(const Json& entry, const char* key) {
  std::vector<const Json*> rows;
  if (!entry.contains(key) || !entry[key].is_array()) return rows;
  for (const Json& r : entry[key]) {
    if (!(r.is_object() && r.contains("skipped"))) rows.push_back(&r);
  }
  return rows;
}

class ProfileReader {
 public:
  explicit ProfileReader(const Json& entry) : entry_(entry), layers_(number_or(entry, "num_layers", 0)) {}

  Status read() {
    if (entry_.contains("num_layers")) BATON_RETURN_IF_ERROR(number(entry_, "num_layers", 0, 1e6).status());
    for (const Json* d : rows_of(entry_, "decode")) BATON_RETURN_IF_ERROR(decode(*d));
    for (const Json* p : rows_of(entry_, "prefill")) BATON_RETURN_IF_ERROR(prefill(*p));
    for (const Json* x : rows_of(entry_, "mixed")) BATON_RETURN_IF_ERROR(mixed(*x));
    for (const Json* v : rows_of(entry_, "served_prefill")) BATON_RETURN_IF_ERROR(served(*v));
    return Status::ok();
  }
  std::vector<StepSample> take() { return std::move(out_); }

 private:
  // The attention kernels timed alone are per layer: they need the layer count.
  Status timed_alone(const Json& row, const char* key, double to_s, StepSample whole, StepPart part) {
    if (layers_ <= 0 || !row.contains(key)) return Status::ok();
    BATON_ASSIGN_OR_RETURN(double t, number(row, key, kMinMs, kMaxMs));
    whole.part = part;
    whole.seconds = t * layers_ * to_s;
    whole.label += fmt::format(", its attention alone ({})", key);
    out_.push_back(std::move(whole));
    return Status::ok();
  }

  Status decode(const Json& d) {
    BATON_ASSIGN_OR_RETURN(double batch, number(d, "batch", 1, kMaxCount));
    BATON_ASSIGN_OR_RETURN(double context, count(d, "context"));
    BATON_ASSIGN_OR_RETURN(double ms, millis(d, "step_ms"));
    StepSample s;
    s.shape.decode_seqs = static_cast<int64_t>(batch);
    s.shape.decode_context_tokens = static_cast<int64_t>(batch * context);
    s.seconds = ms / 1000.0;
    s.label = fmt::format("decode batch {}, context {}", batch, context);
    BATON_RETURN_IF_ERROR(timed_alone(d, "attention_us_per_layer", 1e-6, s, StepPart::kDecodeAttention));
    out_.push_back(std::move(s));
    return Status::ok();
  }

  Status prefill(const Json& p) {
    BATON_ASSIGN_OR_RETURN(double tokens, number(p, "tokens", 1, kMaxCount));
    BATON_ASSIGN_OR_RETURN(double ms, millis(p, "time_ms"));
    // After `context` tokens already computed (a later chunk of a long prompt); 0: a fresh prompt.
    BATON_ASSIGN_OR_RETURN(double context, count_or_zero(p, "context"));
    StepSample s;
    s.shape.prefill_tokens = static_cast<int64_t>(tokens);
    s.shape.prefill_attention_pairs = causal_pairs(static_cast<int64_t>(context), static_cast<int64_t>(tokens));
    s.shape.first_token_seqs = 1;  // the profile's step samples, as a prompt's last chunk does
    s.seconds = ms / 1000.0;
    s.label = context > 0 ? fmt::format("prefill {} tokens after {}", tokens, context)
                          : fmt::format("prefill {} tokens", tokens);
    BATON_RETURN_IF_ERROR(timed_alone(p, "attention_ms_per_layer", 1e-3, s, StepPart::kPrefillAttention));
    out_.push_back(std::move(s));
    return Status::ok();
  }

  // A decode batch beside a prompt's chunk (baton_gpu_profile --mixed-steps).
  Status mixed(const Json& x) {
    BATON_ASSIGN_OR_RETURN(double decodes, count(x, "decode_batch"));
    BATON_ASSIGN_OR_RETURN(double context, count(x, "decode_context"));
    BATON_ASSIGN_OR_RETURN(double chunk, count(x, "prefill_tokens"));
    BATON_ASSIGN_OR_RETURN(double chunk_context, count(x, "prefill_context"));
    BATON_ASSIGN_OR_RETURN(double ms, millis(x, "step_ms"));
    if (decodes + chunk < 1) return invalid_argument("mixed row has no work: {}", x.dump().substr(0, 200));
    StepSample s;
    s.shape.decode_seqs = static_cast<int64_t>(decodes);
    s.shape.decode_context_tokens = static_cast<int64_t>(decodes * context);
    s.shape.prefill_tokens = static_cast<int64_t>(chunk);
    s.shape.prefill_attention_pairs = causal_pairs(static_cast<int64_t>(chunk_context), static_cast<int64_t>(chunk));
    s.shape.first_token_seqs = chunk > 0 ? 1 : 0;  // every sequence of the profile's step samples
    s.seconds = ms / 1000.0;
    s.label = fmt::format("mixed: {} decodes at {} + {} tokens after {}", decodes, context, chunk, chunk_context);
    out_.push_back(std::move(s));
    return Status::ok();
  }

  // A served instance at saturation: `batch` whole prompts a step.
  Status served(const Json& p) {
    BATON_ASSIGN_OR_RETURN(double tokens, number(p, "prompt_tokens", 1, kMaxCount));
    BATON_ASSIGN_OR_RETURN(double batch, number(p, "batch", 1, kMaxCount));
    BATON_ASSIGN_OR_RETURN(double rps, number(p, "requests_per_s", 1e-9, kMaxCount));
    const auto n = static_cast<int64_t>(tokens), b = static_cast<int64_t>(batch);
    StepSample s;
    s.shape.prefill_tokens = b * n;
    s.shape.prefill_attention_pairs = static_cast<double>(b) * causal_pairs(0, n);
    s.shape.first_token_seqs = b;
    s.seconds = batch / rps;
    s.label = fmt::format("served prefill, {} prompts of {} tokens a step, {:.1f} req/s", b, n, rps);
    out_.push_back(std::move(s));
    return Status::ok();
  }

  const Json& entry_;
  const double layers_;
  std::vector<StepSample> out_;
};

}  // namespace

Result<const Json*> profile_model_entry(const Json& profile, const std::string& model) {
  if (!profile.is_object() || !profile.contains("models") || !profile["models"].is_array()) {
    return invalid_argument("a profile must be a JSON object with a 'models' array (baton profile --json)");
  }
  const Json* entry = nullptr;
  for (const Json& m : profile["models"]) {
    if (!m.is_object()) continue;
    if (model.empty() || (m.contains("model") && m["model"].is_string() && m["model"].get<std::string>() == model)) {
      entry = &m;
      break;
    }
  }
  if (entry == nullptr) return not_found("the profile has no model '{}'", model);
  return entry;
}

Result<std::vector<StepSample>> samples_from_profile(const Json& profile, const std::string& model) {
  BATON_ASSIGN_OR_RETURN(const Json* entry, profile_model_entry(profile, model));
  ProfileReader reader(*entry);
  BATON_RETURN_IF_ERROR(reader.read());
  std::vector<StepSample> out = reader.take();
  if (out.empty()) return invalid_argument("the profile's model entry has no decode or prefill measurements");
  return out;
}

}  // namespace baton::planner

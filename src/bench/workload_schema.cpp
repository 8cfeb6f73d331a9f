#include "bench/workload_schema.h"

#include <cmath>
#include <type_traits>

namespace baton::bench {

namespace {

using S = WorkloadSettings;

const char* name_of(const WorkloadOption& o, OptionNames names) { return names == OptionNames::kFlag ? o.flag : o.key; }

std::string name_of(const char* key, OptionNames names) {
  for (const auto& o : workload_options()) {
    if (std::string(o.key) == key) return name_of(o, names);
  }
  return key;
}

Status check_ranges(const WorkloadSettings& s, OptionNames names) {
  for (const auto& o : workload_options()) {
    Status st = std::visit(
        [&](auto field) -> Status {
          using T = std::remove_cvref_t<decltype(s.*field)>;
          if constexpr (std::is_arithmetic_v<T>) {
            const double v = static_cast<double>(s.*field);
            if (v >= o.min && v <= o.max) return Status::ok();
            if (std::isinf(o.max)) return invalid_argument("{} must be >= {} (got {})", name_of(o, names), o.min, v);
            return invalid_argument("{} must be in [{}, {}] (got {})", name_of(o, names), o.min, o.max, v);
          }
          return Status::ok();
        },
        o.field);
    BATON_RETURN_IF_ERROR(st);
  }
  return Status::ok();
}

}  // namespace

const std::vector<WorkloadOption>& workload_options() {
  static const std::vector<WorkloadOption> kOptions = {
      {"kind", "--workload", &S::kind, "random | prefix | multiturn | trace"},
      {"input_len", "--input-len", &S::input_len, "Prompt tokens: N or MIN:MAX"},
      {"output_len", "--output-len", &S::output_len, "Output tokens (exact): N or MIN:MAX"},
      {"num_requests", "--num-requests", &S::num_requests,
       "Requests to send (multiturn: / turns = sessions; trace: the first N, 0 = all)"},
      {"duration_s", "--duration-s", &S::duration_s, "Send for this long instead of a count", 0},
      {"arrival", "--arrival", &S::arrival, "poisson | gamma | constant"},
      {"burstiness", "--burstiness", &S::burstiness, "Gamma shape (1 = Poisson, < 1 burstier)"},
      {"max_concurrency", "--max-concurrency", &S::max_concurrency, "Cap on requests in flight (0: none)"},
      {"warmup", "--warmup", &S::warmup, "First N requests are excluded from results"},
      {"warmup_s", "--warmup-s", &S::warmup_s,
       "Requests (sessions) scheduled in the first S seconds are excluded from results: the load is still "
       "building up",
       0},
      {"seed", "--seed", &S::seed,
       "Seed for arrivals, lengths and prompts (bench: drawn fresh each run unless given, and printed)"},
      {"slo", "--slo", &S::slo, "e.g. \"ttft:p90<500ms,tpot:p90<40ms,e2e:p99<20s\""},
      {"attainment", "--attainment", &S::attainment, "Also require this fraction of good requests (0..1)", 0, 1},
      {"trace", "--trace", &S::trace, "Trace file to replay (implies --workload trace)"},
      {"trace_format", "--trace-format", &S::trace_format, "azure | mooncake"},
      {"time_scale", "--time-scale", &S::time_scale, "Multiply trace timestamps by this (0.5 = twice as fast)"},
      {"prefix_groups", "--prefix-groups", &S::prefix_groups, "prefix workload: number of shared prefixes"},
      {"prefix_hit_rate", "--prefix-hit-rate", &S::prefix_hit_rate, "prefix workload: target prefix-cache hit rate"},
      {"turns", "--turns", &S::turns, "multiturn: turns per session"},
      {"think_time_s", "--think-time-s", &S::think_time_s, "multiturn: pause after each answer"},
      {"prompt_format", "--prompt-format", &S::prompt_format, "ids (exact lengths) | text"},
      {"vocab_size", "--vocab-size", &S::vocab_size,
       "Token ids are drawn below this, away from special ids (default: bench asks GET /v1/models, else "
       "151936, Qwen3's; sweep reads the deployment's model)",
       0},
  };
  return kOptions;
}

Result<WorkloadOptions> to_workload_options(const WorkloadSettings& s, OptionNames names) {
  BATON_RETURN_IF_ERROR(check_ranges(s, names));
  auto given = [&](const char* key) { return s.given.count(key) > 0; };
  WorkloadOptions w;
  w.kind = s.kind;
  if (!s.trace.empty() && !given("kind")) w.kind = "trace";
  BATON_ASSIGN_OR_RETURN(w.input_len, parse_length_range(s.input_len, name_of("input_len", names)));
  BATON_ASSIGN_OR_RETURN(w.output_len, parse_length_range(s.output_len, name_of("output_len", names)));
  w.duration_s = s.duration_s;
  w.num_requests = s.duration_s > 0 && !given("num_requests") ? 0 : s.num_requests;
  BATON_ASSIGN_OR_RETURN(w.arrival.kind, parse_arrival_kind(s.arrival));
  w.arrival.burstiness = s.burstiness;
  w.arrival.seed = s.seed;
  w.seed = s.seed;
  w.num_prefix_groups = s.prefix_groups;
  w.prefix_hit_rate = s.prefix_hit_rate;
  w.num_turns = s.turns;
  w.think_time_s = s.think_time_s;
  w.trace_path = s.trace;
  BATON_ASSIGN_OR_RETURN(w.trace_format, parse_trace_format(s.trace_format));
  w.time_scale = s.time_scale;
  if (s.prompt_format == "ids") {
    w.prompt_format = PromptFormat::kTokenIds;
  } else if (s.prompt_format == "text") {
    w.prompt_format = PromptFormat::kText;
  } else {
    return invalid_argument("{} must be ids or text (got '{}')", name_of("prompt_format", names), s.prompt_format);
  }
  w.vocab_size = s.vocab_size;
  return w;
}

Json settings_json(const WorkloadSettings& s) {
  Json j = Json::object();
  for (const auto& o : workload_options()) std::visit([&](auto field) { j[o.key] = s.*field; }, o.field);
  return j;
}

Result<SloSpec> settings_slo(const WorkloadSettings& s, OptionNames names) {
  BATON_RETURN_IF_ERROR(check_ranges(s, names));
  return parse_slo(s.slo, s.attainment);
}

}  // namespace baton::bench

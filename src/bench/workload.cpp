#include "bench/workload.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <random>

namespace baton::bench {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t key_of(uint64_t seed, char tag, uint64_t a, uint64_t b = 0) {
  return splitmix64(splitmix64(splitmix64(seed ^ static_cast<uint64_t>(tag)) ^ a) ^ (b * 0x2545f4914f6cdd1dULL));
}

constexpr const char* kWords[] = {
    "the",   "of",    "and",  "to",    "in",    "is",     "that",  "for",   "it",    "as",    "was",
    "with",  "be",    "by",   "on",    "not",   "he",     "this",  "are",   "or",    "his",   "from",
    "at",    "which", "but",  "have",  "an",    "had",    "they",  "you",   "were",  "their", "one",
    "all",   "we",    "can",  "her",   "has",   "there",  "been",  "if",    "more",  "when",  "will",
    "would", "who",   "so",   "no",    "time",  "people", "water", "world", "house", "light", "music",
    "river", "stone", "city", "green", "paper", "story",  "table", "money", "night"};
constexpr uint64_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

int64_t draw(std::mt19937_64& rng, const LengthRange& r) {
  if (r.min == r.max) return r.min;
  return std::uniform_int_distribution<int64_t>(r.min, r.max)(rng);
}

Result<std::vector<double>> session_or_request_times(const WorkloadOptions& o, size_t count) {
  if (o.duration_s > 0 && o.num_requests == 0) return arrival_times_within(o.arrival, o.duration_s);
  return arrival_times(o.arrival, count);
}

}  // namespace

Result<LengthRange> parse_length_range(const std::string& text, const std::string& what) {
  LengthRange r;
  auto parse = [](std::string_view s, int64_t& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
  };
  auto colon = text.find(':');
  bool ok = colon == std::string::npos ? parse(text, r.min) && (r.max = r.min, true)
                                       : parse(std::string_view(text).substr(0, colon), r.min) &&
                                             parse(std::string_view(text).substr(colon + 1), r.max);
  if (!ok) return invalid_argument("{} '{}': expected N or MIN:MAX (token counts)", what, text);
  if (r.min < 1 || r.max < r.min) {
    return invalid_argument("{} '{}': need 1 <= MIN <= MAX", what, text);
  }
  return r;
}

std::pair<int32_t, int32_t> token_id_range(int64_t vocab_size) {
  int64_t lo = std::min<int64_t>(100, vocab_size / 4);
  int64_t hi = vocab_size - std::min<int64_t>(300, vocab_size / 4);
  return {static_cast<int32_t>(lo), static_cast<int32_t>(std::max(hi, lo + 1))};
}

std::vector<int32_t> materialize_ids(const std::vector<Segment>& prompt, int64_t vocab_size) {
  auto [lo, hi] = token_id_range(vocab_size);
  auto span = static_cast<uint64_t>(hi - lo);
  std::vector<int32_t> ids;
  for (const auto& s : prompt) {
    for (int64_t i = 0; i < s.num_tokens; ++i) {
      ids.push_back(lo +
                    static_cast<int32_t>(splitmix64(s.key + static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ULL) % span));
    }
  }
  return ids;
}

std::vector<bool> warmup_flags(const Workload& workload, size_t num_warmup, double warmup_s) {
  const auto& reqs = workload.requests;
  std::vector<bool> warm(reqs.size(), false);
  std::vector<size_t> firsts;
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].turn == 0) firsts.push_back(i);
  }
  std::stable_sort(firsts.begin(), firsts.end(),
                   [&](size_t a, size_t b) { return reqs[a].arrival_s < reqs[b].arrival_s; });
  for (size_t k = 0; k < firsts.size(); ++k) {
    if (k < num_warmup || reqs[firsts[k]].arrival_s < warmup_s) warm[firsts[k]] = true;
  }
  // Follow-up turns of a warm-up session are warm-up too (a turn's next turn
  // comes later in the list or anywhere: follow the chains).
  for (size_t i : firsts) {
    if (!warm[i]) continue;
    for (int64_t next = reqs[i].next_turn; next >= 0; next = reqs[static_cast<size_t>(next)].next_turn) {
      warm[static_cast<size_t>(next)] = true;
    }
  }
  return warm;
}

std::string materialize_text(const std::vector<Segment>& prompt) {
  std::string text;
  for (const auto& s : prompt) {
    for (int64_t i = 0; i < s.num_tokens; ++i) {
      if (!text.empty()) text.push_back(' ');
      text += kWords[splitmix64(s.key + static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ULL) % kNumWords];
    }
  }
  return text;
}

Status validate(const WorkloadOptions& o) {
  if (o.kind != "random" && o.kind != "prefix" && o.kind != "multiturn" && o.kind != "trace") {
    return invalid_argument("unknown workload '{}' (use random, prefix, multiturn or trace)", o.kind);
  }
  if (o.input_len.min < 1 || o.input_len.max < o.input_len.min) return invalid_argument("bad input length range");
  if (o.output_len.min < 1 || o.output_len.max < o.output_len.min) return invalid_argument("bad output length range");
  if (o.num_requests == 0 && !(o.duration_s > 0) && o.kind != "trace") {  // a trace: all of it
    return invalid_argument("give a number of requests (> 0) or a duration (> 0 s)");
  }
  if (o.vocab_size < 16) return invalid_argument("vocab size {} is too small (>= 16)", o.vocab_size);
  if (o.kind == "prefix") {
    if (o.num_prefix_groups < 1) return invalid_argument("prefix workload needs >= 1 group");
    if (!(o.prefix_hit_rate >= 0 && o.prefix_hit_rate < 1)) {
      return invalid_argument("prefix hit rate must be in [0, 1) (got {})", o.prefix_hit_rate);
    }
  }
  if (o.kind == "multiturn") {
    if (o.num_turns < 1) return invalid_argument("multiturn needs >= 1 turn (got {})", o.num_turns);
    if (!(o.think_time_s >= 0)) return invalid_argument("think time must be >= 0 s");
  }
  if (o.kind == "trace") {
    if (o.trace_path.empty()) return invalid_argument("the trace workload needs --trace FILE");
    if (!(o.time_scale > 0) || !std::isfinite(o.time_scale)) {
      return invalid_argument("time scale must be a finite number > 0 (got {})", o.time_scale);
    }
  }
  if (o.kind != "trace" || o.rate_overrides_trace) BATON_RETURN_IF_ERROR(validate(o.arrival));
  return Status::ok();
}

const char* rate_unit(const std::string& kind) { return kind == "multiturn" ? "sessions/s" : "req/s"; }

std::string result_rate_unit(const Json& doc) {
  const Json runs = doc.is_object() ? doc.value("runs", Json::array()) : Json::array();
  if (!runs.is_array() || runs.empty() || !runs[0].is_object()) return rate_unit("");
  const Json w = runs[0].value("workload", Json::object());
  return rate_unit(w.is_object() ? w.value("kind", std::string()) : std::string());
}

Result<Workload> make_trace_workload(const std::vector<TraceEntry>& all, const WorkloadOptions& o) {
  Workload w;
  w.kind = "trace";
  size_t n = all.size();
  if (o.num_requests > 0) n = std::min(n, o.num_requests);
  double span = n >= 2 ? all[n - 1].timestamp_s - all[0].timestamp_s : 0;
  w.natural_rate = span > 0 ? static_cast<double>(n - 1) / span : 0;
  w.time_scale = o.time_scale;
  if (o.rate_overrides_trace) {
    if (!(w.natural_rate > 0))
      return invalid_argument("the trace's first {} requests span no time: cannot set a rate", n);
    w.time_scale = w.natural_rate / o.arrival.rate;
  }
  for (size_t i = 0; i < n; ++i) {
    const auto& e = all[i];
    double t = e.timestamp_s * w.time_scale;
    if (o.num_requests == 0 && o.duration_s > 0 && t >= o.duration_s) break;
    RequestSpec r;
    r.arrival_s = t;
    r.output_tokens = e.output_tokens;
    int64_t left = e.input_tokens;
    for (int64_t id : e.hash_ids) {
      if (left <= 0) break;
      int64_t len = std::min(left, kMooncakeBlockTokens);
      r.prompt.push_back({key_of(o.seed, 'H', static_cast<uint64_t>(id)), len});
      left -= len;
    }
    if (left > 0) r.prompt.push_back({key_of(o.seed, 'T', i), left});
    r.prompt_tokens = e.input_tokens;
    w.requests.push_back(std::move(r));
  }
  if (w.requests.empty()) return invalid_argument("no trace request falls within the duration");
  w.describe = {{"trace", o.trace_path},
                {"format", o.trace_format == TraceFormat::kAzure ? "azure" : "mooncake"},
                {"natural_rate_rps", w.natural_rate},
                {"time_scale", w.time_scale}};
  return w;
}

Result<Workload> make_workload(const WorkloadOptions& o) {
  BATON_RETURN_IF_ERROR(validate(o));
  if (o.kind == "trace") {
    BATON_ASSIGN_OR_RETURN(auto entries, load_trace(o.trace_path, o.trace_format));
    return make_trace_workload(entries, o);
  }
  Workload w;
  w.kind = o.kind;
  std::mt19937_64 rng(o.seed * 0x2545f4914f6cdd1dULL + 17);
  w.describe = {{"input_len", {o.input_len.min, o.input_len.max}},
                {"output_len", {o.output_len.min, o.output_len.max}}};
  if (o.kind == "multiturn") {
    size_t num_sessions = std::max<size_t>(1, o.num_requests / static_cast<size_t>(o.num_turns));
    BATON_ASSIGN_OR_RETURN(auto starts, session_or_request_times(o, num_sessions));
    for (size_t s = 0; s < starts.size(); ++s) {
      std::vector<Segment> history;
      for (int k = 0; k < o.num_turns; ++k) {
        RequestSpec r;
        r.arrival_s = starts[s];
        r.session = static_cast<int64_t>(s);
        r.turn = k;
        r.think_time_s = k == 0 ? 0 : o.think_time_s;
        if (k > 0) {  // the previous answer, as planned
          history.push_back({key_of(o.seed, 'A', s, static_cast<uint64_t>(k - 1)), w.requests.back().output_tokens});
        }
        history.push_back({key_of(o.seed, 'U', s, static_cast<uint64_t>(k)), draw(rng, o.input_len)});
        r.prompt = history;
        for (const auto& seg : history) r.prompt_tokens += seg.num_tokens;
        r.output_tokens = draw(rng, o.output_len);
        if (k > 0) w.requests.back().next_turn = static_cast<int64_t>(w.requests.size());
        w.requests.push_back(std::move(r));
      }
    }
    w.describe["num_turns"] = o.num_turns;
    w.describe["think_time_s"] = o.think_time_s;
    w.describe["num_sessions"] = starts.size();
    return w;
  }
  BATON_ASSIGN_OR_RETURN(auto times, session_or_request_times(o, o.num_requests));
  for (size_t i = 0; i < times.size(); ++i) {
    RequestSpec r;
    r.arrival_s = times[i];
    int64_t len = draw(rng, o.input_len);
    if (o.kind == "prefix") {
      auto group = std::uniform_int_distribution<size_t>(0, o.num_prefix_groups - 1)(rng);
      auto prefix = static_cast<int64_t>(std::llround(o.prefix_hit_rate * static_cast<double>(len)));
      if (prefix > 0) r.prompt.push_back({key_of(o.seed, 'P', group), prefix});
      if (len - prefix > 0) r.prompt.push_back({key_of(o.seed, 'S', i), len - prefix});
    } else {
      r.prompt.push_back({key_of(o.seed, 'R', i), len});
    }
    r.prompt_tokens = len;
    r.output_tokens = draw(rng, o.output_len);
    w.requests.push_back(std::move(r));
  }
  if (o.kind == "prefix") {
    w.describe["num_prefix_groups"] = o.num_prefix_groups;
    w.describe["prefix_hit_rate"] = o.prefix_hit_rate;
  }
  return w;
}

}  // namespace baton::bench

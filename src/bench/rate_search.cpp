#include "bench/rate_search.h"

#include <cmath>

#include <fmt/format.h>

#include "common/log.h"

namespace baton::bench {

Status validate(const SearchOptions& o) {
  if (!(o.start_rate > 0) || !std::isfinite(o.start_rate)) return invalid_argument("search start rate must be > 0");
  if (!(o.precision > 0 && o.precision < 1)) return invalid_argument("search precision must be in (0, 1), e.g. 0.05");
  if (!(o.min_rate > 0 && o.min_rate <= o.start_rate && o.start_rate <= o.max_rate)) {
    return invalid_argument("need 0 < min rate <= start rate <= max rate");
  }
  if (!(o.close_margin >= 0 && o.close_margin < 1)) return invalid_argument("close margin must be in [0, 1)");
  if (o.max_trials < 2) return invalid_argument("the search needs at least 2 trials");
  return Status::ok();
}

std::string trial_verdict(const TrialOutcome& t) {
  if (t.sustainable) return fmt::format("PASS (worst target at {:.2f}x its limit)", t.worst_ratio);
  std::string broke = t.first_broken.empty() ? "" : ", broke: " + t.first_broken;
  if (t.stopped_early) return "FAIL (stopped early, the verdict certain" + broke + ")";
  if (!std::isfinite(t.worst_ratio)) return "FAIL (no measured request succeeded" + broke + ")";
  return fmt::format("FAIL (worst target at {:.2f}x its limit{})", t.worst_ratio, broke);
}

namespace {

class Searcher {
 public:
  Searcher(const TrialFn& trial, const SearchOptions& o) : trial_(trial), o_(o) {}

  // Runs the trial at `rate` (repeated when close); returns whether it passed.
  Result<bool> decide(double rate) {
    BATON_ASSIGN_OR_RETURN(auto first, run(rate));
    bool close = std::abs(first.worst_ratio - 1.0) <= o_.close_margin;
    if (!close) return first.sustainable;
    int passes = first.sustainable ? 1 : 0;
    for (int k = 0; k < 2; ++k) {
      BATON_ASSIGN_OR_RETURN(auto again, run(rate));
      passes += again.sustainable ? 1 : 0;
    }
    BATON_LOG_INFO("rate {:.3f}/s was close to the limit: {} of 3 trials passed", rate, passes);
    return passes >= 2;
  }

  Result<TrialOutcome> run(double rate) {
    if (static_cast<int>(result_.trials.size()) >= o_.max_trials) {
      return resource_exhausted("the search ran out of trials ({})", o_.max_trials);
    }
    BATON_ASSIGN_OR_RETURN(auto t, trial_(rate));
    t.rate = rate;
    BATON_LOG_INFO("trial at {:.3f} req/s: {}", rate, trial_verdict(t));
    result_.trials.push_back(t);
    return t;
  }

  void passed(double rate) { result_.max_passed_rate = std::max(result_.max_passed_rate, rate); }
  void failed(double rate) {
    if (rate < result_.min_failed_rate) {
      result_.min_failed_rate = rate;
      // the worst broken target among this rate's trials
      for (auto it = result_.trials.rbegin(); it != result_.trials.rend(); ++it) {
        if (it->rate == rate && !it->sustainable) {
          result_.broke_first = it->first_broken;
          break;
        }
      }
    }
  }

  Result<SearchResult> search() {
    double rate = o_.start_rate;
    // 1. bracket
    auto d = decide(rate);
    if (!d) return finish_early(d.status());
    if (*d) {
      passed(rate);
      for (;;) {
        rate *= 2;
        if (rate > o_.max_rate) {
          result_.note = fmt::format("every rate up to the maximum {} req/s passed", o_.max_rate);
          return result_;
        }
        auto ok = decide(rate);
        if (!ok) return finish_early(ok.status());
        if (!*ok) {
          failed(rate);
          break;
        }
        passed(rate);
      }
    } else {
      failed(rate);
      for (;;) {
        rate /= 2;
        if (rate < o_.min_rate) {
          result_.note = fmt::format("no rate down to the minimum {} req/s passed", o_.min_rate);
          return result_;
        }
        auto ok = decide(rate);
        if (!ok) return finish_early(ok.status());
        if (*ok) {
          passed(rate);
          break;
        }
        failed(rate);
      }
    }
    // 2. bisect
    while ((result_.min_failed_rate - result_.max_passed_rate) / result_.max_passed_rate > o_.precision) {
      double mid = 0.5 * (result_.max_passed_rate + result_.min_failed_rate);
      auto ok = decide(mid);
      if (!ok) return finish_early(ok.status());
      if (*ok) passed(mid);
      else failed(mid);
    }
    result_.converged = true;
    return result_;
  }

 private:
  Result<SearchResult> finish_early(const Status& st) {
    if (st.code() == StatusCode::kResourceExhausted) {
      result_.note = st.message();
      return result_;
    }
    return st;
  }

  const TrialFn& trial_;
  SearchOptions o_;
  SearchResult result_;
};

}  // namespace

Result<SearchResult> search_max_rate(const TrialFn& trial, const SearchOptions& options) {
  BATON_RETURN_IF_ERROR(validate(options));
  Searcher s(trial, options);
  return s.search();
}

Json SearchResult::to_json() const {
  Json trials_json = Json::array();
  for (const auto& t : trials) {
    trials_json.push_back({{"rate_rps", t.rate},
                           {"sustainable", t.sustainable},
                           {"worst_ratio", std::isfinite(t.worst_ratio) ? Json(t.worst_ratio) : Json(nullptr)},
                           {"stopped_early", t.stopped_early},
                           {"first_broken", t.first_broken}});
  }
  return Json{{"max_sustainable_rps", max_passed_rate},
              {"min_failed_rps", std::isfinite(min_failed_rate) ? Json(min_failed_rate) : Json(nullptr)},
              {"broke_first", broke_first},
              {"converged", converged},
              {"note", note},
              {"num_trials", trials.size()},
              {"trials", trials_json}};
}

}  // namespace baton::bench

#include "cli/bench_watch.h"

#include <filesystem>
#include <iostream>
#include <utility>

#include <fmt/format.h>

#include "cli/cli_util.h"
#include "deploy/sampled_run.h"
#include "http/url.h"

namespace baton::cli {

Result<std::vector<deploy::SampleTarget>> parse_watch_targets(const std::string& list) {
  std::vector<deploy::SampleTarget> out;
  for (const std::string& item : split_commas(list)) {
    deploy::SampleTarget t;
    size_t eq = item.find('=');
    t.url = eq == std::string::npos ? item : item.substr(eq + 1);
    auto url = http::parse_url(t.url);
    if (!url.is_ok()) {
      return invalid_argument("--watch '{}': '{}' is not an http URL: {}", list, t.url, url.status().message());
    }
    t.name = eq == std::string::npos ? fmt::format("{}:{}", url->host, url->port) : item.substr(0, eq);
    if (t.name.empty()) return invalid_argument("--watch '{}': '{}' has an empty name", list, item);
    t.role = "instance";
    for (const char* role : {"prefill", "decode", "agg", "router"}) {
      if (t.name.rfind(role, 0) == 0) t.role = role;
    }
    // The sampler adds /metrics to the origin.
    t.url = fmt::format("http://{}:{}", url->host, url->port);
    out.push_back(std::move(t));
  }
  return out;
}

Result<WatchedRun> run_watched(const bench::BenchConfig& config, std::optional<double> rate,
                               const std::vector<deploy::SampleTarget>& targets, const std::string& out_dir,
                               size_t run_index) {
  deploy::MetricsSamplerOptions o;
  if (!targets.empty() && !out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    o.out_path = (std::filesystem::path(out_dir) / "metrics.jsonl").string();
  }
  o.tags = {{"run", run_index}};
  if (rate) o.tags["rate"] = *rate;
  auto warn = [](const std::string& m) { std::cerr << "warning: " << m << "\n"; };
  BATON_ASSIGN_OR_RETURN(auto run, deploy::run_sampled(config, rate, targets, o, warn));
  WatchedRun out;
  out.report = std::move(run.report);
  if (!run.loads.empty()) {
    out.instances = fmt::format("  instances during the run{}:\n", out_dir.empty() ? "" : " (metrics.jsonl)") +
                    deploy::format_instance_loads(run.loads);
  }
  return out;
}

}  // namespace baton::cli

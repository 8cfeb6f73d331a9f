#include "planner/transfer_fit.h"

#include <cmath>
#include <vector>

namespace baton::planner {

Json TransferFit::to_json() const {
  return Json{{"latency_s", latency_s}, {"bytes_per_s", bytes_per_s}, {"num_rows", num_rows}};
}

Result<TransferFit> fit_transfer(const Json& doc, const std::string& transport, int tcp_streams) {
  if (!doc.is_object() || !doc.contains("rows") || !doc["rows"].is_array()) {
    return invalid_argument(
        "a bench-transfer result is a JSON object with a 'rows' array (baton bench-transfer --json)");
  }
  std::vector<double> bytes, seconds;
  for (const Json& r : doc["rows"]) {
    auto number = [&](const char* key) { return r.contains(key) && r[key].is_number() ? r[key].get<double>() : 0.0; };
    if (!r.is_object() || !r.contains("transport") || !r["transport"].is_string() ||
        r["transport"].get<std::string>() != transport) {
      continue;
    }
    if (tcp_streams > 0 && number("tcp_streams") != tcp_streams) continue;
    const double b = number("bytes"), ms = r.contains("median_ms") ? number("median_ms") : number("best_ms");
    if (!(b > 0 && b < 1e15) || !(ms > 0 && ms < 1e9)) {
      return invalid_argument("bench-transfer row lacks positive bytes and median_ms: {}", r.dump().substr(0, 200));
    }
    bytes.push_back(b);
    seconds.push_back(ms / 1e3);
  }
  if (bytes.empty()) return not_found("the bench-transfer result has no '{}' rows", transport);
  TransferFit f;
  f.num_rows = static_cast<int>(bytes.size());
  double mb = 0, ms = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    mb += bytes[i] / bytes.size();
    ms += seconds[i] / seconds.size();
  }
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    sxx += (bytes[i] - mb) * (bytes[i] - mb);
    sxy += (bytes[i] - mb) * (seconds[i] - ms);
  }
  const double slope = sxx > 0 ? sxy / sxx : 0;
  if (slope > 0 && ms - slope * mb >= 0) {
    f.bytes_per_s = 1 / slope;
    f.latency_s = ms - slope * mb;
  } else {  // one size, or a negative intercept: the bandwidth of the total, no latency
    double total_b = 0, total_s = 0;
    for (size_t i = 0; i < bytes.size(); ++i) {
      total_b += bytes[i];
      total_s += seconds[i];
    }
    f.bytes_per_s = total_b / total_s;
  }
  return f;
}

}  // namespace baton::planner

#include "bench/trace.h"

#include <algorithm>
#include <charconv>

#include "common/json.h"

namespace baton::bench {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool parse_int(std::string_view s, int64_t& out) {
  s = trim(s);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

void sort_and_rebase(std::vector<TraceEntry>& entries) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const TraceEntry& a, const TraceEntry& b) { return a.timestamp_s < b.timestamp_s; });
  if (entries.empty()) return;
  double t0 = entries.front().timestamp_s;
  for (auto& e : entries) e.timestamp_s -= t0;
}

}  // namespace

Result<TraceFormat> parse_trace_format(const std::string& name) {
  if (name == "azure") return TraceFormat::kAzure;
  if (name == "mooncake") return TraceFormat::kMooncake;
  return invalid_argument("unknown trace format '{}' (use azure or mooncake)", name);
}

Result<double> parse_timestamp(std::string_view text) {
  text = trim(text);
  int64_t y, mo, d, h, mi;
  // YYYY-MM-DD HH:MM:SS[.fff]
  if (text.size() < 19 || text[4] != '-' || text[7] != '-' || (text[10] != ' ' && text[10] != 'T') || text[13] != ':' ||
      text[16] != ':' || !parse_int(text.substr(0, 4), y) || !parse_int(text.substr(5, 2), mo) ||
      !parse_int(text.substr(8, 2), d) || !parse_int(text.substr(11, 2), h) || !parse_int(text.substr(14, 2), mi)) {
    return invalid_argument("bad timestamp '{}' (expected YYYY-MM-DD HH:MM:SS[.fraction])", text);
  }
  std::string seconds(text.substr(17));
  double sec = 0;
  auto [ptr, ec] = std::from_chars(seconds.data(), seconds.data() + seconds.size(), sec);
  if (ec != std::errc() || ptr != seconds.data() + seconds.size() || sec < 0 || sec >= 61 || mo < 1 || mo > 12 ||
      d < 1 || d > 31 || h > 23 || mi > 59) {
    return invalid_argument("bad timestamp '{}' (expected YYYY-MM-DD HH:MM:SS[.fraction])", text);
  }
  return static_cast<double>(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60) + sec;
}

Result<std::vector<TraceEntry>> parse_azure_csv(std::string_view text, std::string_view source) {
  auto lines = split_lines(text);
  if (lines.empty() || trim(lines[0]).empty()) return invalid_argument("{}: empty trace", source);
  // Columns by header name.
  int col_ts = -1, col_in = -1, col_out = -1, num_cols = 0;
  {
    std::string_view header = trim(lines[0]);
    size_t start = 0;
    for (int i = 0;; ++i) {
      size_t comma = header.find(',', start);
      std::string_view name = trim(header.substr(start, comma == std::string_view::npos ? comma : comma - start));
      if (name == "TIMESTAMP") col_ts = i;
      if (name == "ContextTokens") col_in = i;
      if (name == "GeneratedTokens") col_out = i;
      num_cols = i + 1;
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (col_ts < 0 || col_in < 0 || col_out < 0) {
      return invalid_argument(
          "{}:1: header must name TIMESTAMP, ContextTokens and GeneratedTokens (got '{:.80}'){}", source, header,
          header.starts_with("{") ? ": is this a Mooncake JSONL trace (--trace-format mooncake)?" : "");
    }
  }
  std::vector<TraceEntry> out;
  std::vector<std::string_view> fields;
  for (size_t ln = 1; ln < lines.size(); ++ln) {
    std::string_view line = trim(lines[ln]);
    if (line.empty()) continue;
    fields.clear();
    size_t start = 0;
    for (;;) {
      size_t comma = line.find(',', start);
      fields.push_back(line.substr(start, comma == std::string_view::npos ? comma : comma - start));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (static_cast<int>(fields.size()) != num_cols) {
      return invalid_argument("{}:{}: expected {} fields, got {} in '{}'", source, ln + 1, num_cols, fields.size(),
                              line);
    }
    TraceEntry e;
    auto ts = parse_timestamp(fields[col_ts]);
    if (!ts) return invalid_argument("{}:{}: {}", source, ln + 1, ts.status().message());
    e.timestamp_s = *ts;
    if (!parse_int(fields[col_in], e.input_tokens) || e.input_tokens < 1) {
      return invalid_argument("{}:{}: ContextTokens '{}' is not a positive integer", source, ln + 1,
                              trim(fields[col_in]));
    }
    if (!parse_int(fields[col_out], e.output_tokens) || e.output_tokens < 1) {
      return invalid_argument("{}:{}: GeneratedTokens '{}' is not a positive integer", source, ln + 1,
                              trim(fields[col_out]));
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) return invalid_argument("{}: no requests after the header", source);
  sort_and_rebase(out);
  return out;
}

Result<std::vector<TraceEntry>> parse_mooncake_jsonl(std::string_view text, std::string_view source) {
  auto lines = split_lines(text);
  std::vector<TraceEntry> out;
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    std::string_view line = trim(lines[ln]);
    if (line.empty()) continue;
    auto where = [&](const Status& st) { return invalid_argument("{}:{}: {}", source, ln + 1, st.message()); };
    auto json = parse_json(line, "trace line");
    if (!json) return where(json.status());
    if (!json->is_object()) return invalid_argument("{}:{}: expected a JSON object", source, ln + 1);
    TraceEntry e;
    auto ts = json_require<double>(*json, "timestamp");
    if (!ts) return where(ts.status());
    auto in = json_require<int64_t>(*json, "input_length");
    if (!in) return where(in.status());
    auto outlen = json_require<int64_t>(*json, "output_length");
    if (!outlen) return where(outlen.status());
    auto ids = json_get<std::vector<int64_t>>(*json, "hash_ids", {});
    if (!ids) return where(ids.status());
    if (*ts < 0) return invalid_argument("{}:{}: negative timestamp {}", source, ln + 1, *ts);
    if (*in < 1) return invalid_argument("{}:{}: input_length {} must be >= 1", source, ln + 1, *in);
    if (*outlen < 1) return invalid_argument("{}:{}: output_length {} must be >= 1", source, ln + 1, *outlen);
    e.timestamp_s = *ts / 1000.0;
    e.input_tokens = *in;
    e.output_tokens = *outlen;
    e.hash_ids = std::move(*ids);
    out.push_back(std::move(e));
  }
  if (out.empty()) return invalid_argument("{}: no requests", source);
  sort_and_rebase(out);
  return out;
}

Result<std::vector<TraceEntry>> load_trace(const std::string& path, TraceFormat format) {
  BATON_ASSIGN_OR_RETURN(std::string text, read_file(path));
  if (format == TraceFormat::kAzure) return parse_azure_csv(text, path);
  return parse_mooncake_jsonl(text, path);
}

}  // namespace baton::bench

// Request traces: what arrived when, with which prompt and output lengths.
//   azure:    the Azure LLM inference CSV, header TIMESTAMP,ContextTokens,GeneratedTokens,
//             timestamps "YYYY-MM-DD HH:MM:SS[.fraction]"
//   mooncake: JSONL, one {"timestamp": ms, "input_length", "output_length",
//             "hash_ids": [...]} per line; each hash id names one 512-token block,
//             equal ids across requests are shared prefix blocks
// Entries come back sorted by time, the first at t = 0. A bad line is an
// error naming the file, the line number and the problem.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace baton::bench {

enum class TraceFormat { kAzure, kMooncake };

Result<TraceFormat> parse_trace_format(const std::string& name);

inline constexpr int64_t kMooncakeBlockTokens = 512;

struct TraceEntry {
  double timestamp_s = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  std::vector<int64_t> hash_ids;  // mooncake only
};

// `source` names the text in error messages (usually the file path).
Result<std::vector<TraceEntry>> parse_azure_csv(std::string_view text, std::string_view source);
Result<std::vector<TraceEntry>> parse_mooncake_jsonl(std::string_view text, std::string_view source);
Result<std::vector<TraceEntry>> load_trace(const std::string& path, TraceFormat format);

// Parses "YYYY-MM-DD HH:MM:SS[.fraction]" as seconds since 1970 (UTC).
Result<double> parse_timestamp(std::string_view text);

}  // namespace baton::bench

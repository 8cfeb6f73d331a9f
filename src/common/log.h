// Logging: spdlog, with the level taken from BATON_LOG_LEVEL (trace..off) at
// first use. Logs go to stderr so that stdout stays for command output.
#pragma once

#include <spdlog/spdlog.h>

namespace baton {

// Idempotent; called by the CLI at start. Safe to skip (spdlog defaults).
void init_logging();

}  // namespace baton

#define BATON_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define BATON_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define BATON_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define BATON_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define BATON_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)

#pragma once
// Operational log facade over spdlog. Not the audit log: a successful request logs nothing.
// Debug/trace macros check the level before formatting; SPDLOG_ACTIVE_LEVEL compiles them out.
// Never log header values, bodies, query strings or certificate fields (PHI).
#include <spdlog/spdlog.h>

#include <string_view>

namespace phigate::core {

/// Sets up the process-wide logger (stderr). Call once from main before any thread starts.
void init_logging(std::string_view level);

/// Parses "trace|debug|info|warn|error|off"; false on anything else.
bool parse_log_level(std::string_view text, spdlog::level::level_enum& out);

}  // namespace phigate::core

#define PHI_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define PHI_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define PHI_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define PHI_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define PHI_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)

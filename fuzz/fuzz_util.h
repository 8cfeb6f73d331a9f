// Helpers shared by the fuzz targets (fuzz/*_fuzz.cpp).
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string_view>

namespace baton::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Parsers log what they refuse; at fuzzing speed that is only noise.
inline void quiet_logs() { spdlog::set_level(spdlog::level::off); }

}  // namespace baton::fuzz

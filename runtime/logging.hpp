// spdlog for the runtime (CAF's own logging is compiled out in Debian's build). Lines name the
// node and the term: "n2 [term 3] granted vote to n1".
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <spdlog/logger.h>

namespace cafraft {

/// Lines each logger keeps in memory for recent_log_lines().
constexpr size_t recent_log_capacity = 512;

/// The logger called `name` ("cafraft" if empty), created on first use with a stderr sink and
/// an in-memory ring of its last lines.
std::shared_ptr<spdlog::logger> get_logger(const std::string& name);

/// The last lines (at most `max`) of logger `name` that contain `filter`, oldest first.
std::vector<std::string> recent_log_lines(const std::string& name, const std::string& filter,
                                          size_t max);

} // namespace cafraft

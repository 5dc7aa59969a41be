// spdlog for the runtime (CAF's own logging is compiled out in Debian's build). Lines name the
// node and the term: "n2 [term 3] granted vote to n1".
#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace cafraft {

/// The logger called `name` ("cafraft" if empty), created on first use with a stderr sink.
std::shared_ptr<spdlog::logger> get_logger(const std::string& name);

} // namespace cafraft

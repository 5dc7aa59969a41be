#include "runtime/logging.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace cafraft {

std::shared_ptr<spdlog::logger> get_logger(const std::string& name) {
  static std::mutex mtx;
  std::lock_guard<std::mutex> guard{mtx};
  auto n = name.empty() ? std::string{"cafraft"} : name;
  if (auto lg = spdlog::get(n))
    return lg;
  auto lg = spdlog::stderr_color_mt(n);
  lg->set_pattern("%H:%M:%S.%e %^%l%$ %v");
  return lg;
}

} // namespace cafraft

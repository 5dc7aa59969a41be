#include <cafraft/runtime/logging.hpp>

#include <map>
#include <mutex>

#include <spdlog/sinks/ringbuffer_sink.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace cafraft {

namespace {

// Function-local statics: loggers are asked for during static initialization too.
std::mutex& registry_mutex() {
  static std::mutex mtx;
  return mtx;
}

std::map<std::string, std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt>>& rings() {
  static std::map<std::string, std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt>> r;
  return r;
}

} // namespace

std::shared_ptr<spdlog::logger> get_logger(const std::string& name) {
  std::lock_guard<std::mutex> guard{registry_mutex()};
  auto n = name.empty() ? std::string{"cafraft"} : name;
  if (auto lg = spdlog::get(n))
    return lg;
  auto lg = spdlog::stderr_color_mt(n);
  // The last lines also stay in memory, for inspection (recent_log_lines).
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(recent_log_capacity);
  ring->set_pattern("%H:%M:%S.%e %l %v");
  lg->sinks().push_back(ring);
  rings()[n] = ring;
  lg->set_pattern("%H:%M:%S.%e %^%l%$ %v");
  ring->set_pattern("%H:%M:%S.%e %l %v");
  return lg;
}

std::vector<std::string> recent_log_lines(const std::string& name, const std::string& filter,
                                          size_t max) {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> ring;
  {
    std::lock_guard<std::mutex> guard{registry_mutex()};
    auto i = rings().find(name.empty() ? std::string{"cafraft"} : name);
    if (i == rings().end())
      return {};
    ring = i->second;
  }
  std::vector<std::string> out;
  for (auto& line : ring->last_formatted())
    if (filter.empty() || line.find(filter) != std::string::npos)
      out.push_back(line);
  if (out.size() > max)
    out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(max));
  return out;
}

} // namespace cafraft

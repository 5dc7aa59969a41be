// Shared by cafraft-floor's two ways of replicating a write (bench/replicated_floor.cpp over
// plain TCP, bench/replicated_floor_caf.cpp over CAF): member processes, failing a run, whole
// reads and writes, and the members' log files.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace cafraft::floor {

struct options {
  long writes = 5000;
  long warmup = 500;
  long value_size = 256;
  std::string dir;
  bool memory = false; // no fdatasync
  bool caf = false;    // members are CAF actors talking over CAF's middleman
};

/// What the client measured: one latency per measured write, and the measured seconds.
struct result {
  std::vector<double> latency_us;
  double seconds = 0;
};

constexpr off_t reserved_bytes = off_t{64} << 20;

// The member processes the client started (empty in the members themselves).
inline std::vector<pid_t> children;

/// Ends the run with exit code 2: in the client, after ending and reaping the members. It exits
/// without running destructors: a member may fail while its actor system's threads still run.
[[noreturn]] inline void fail_run() {
  for (pid_t child : children)
    ::kill(child, SIGTERM);
  for (pid_t child : children)
    ::waitpid(child, nullptr, 0);
  std::fflush(nullptr);
  std::_Exit(2);
}

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "cafraft-floor: %s: %s\n", what, std::strerror(errno));
  fail_run();
}

[[noreturn]] inline void fail_closed(const char* who) {
  std::fprintf(stderr, "cafraft-floor: the %s closed its connection\n", who);
  fail_run();
}

inline void write_all(int fd, const void* data, size_t n) {
  auto p = static_cast<const char*>(data);
  while (n > 0) {
    auto k = ::write(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      fail("write");
    p += k;
    n -= static_cast<size_t>(k);
  }
}

/// Reads exactly n bytes; false at the peer's orderly close before the first byte.
inline bool read_all(int fd, void* data, size_t n) {
  auto p = static_cast<char*>(data);
  size_t got = 0;
  while (got < n) {
    auto k = ::read(fd, p + got, n - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k == 0 && got == 0)
      return false;
    if (k <= 0)
      fail("read");
    got += static_cast<size_t>(k);
  }
  return true;
}

/// Starts a member process that runs `body` and exits 0 (a failure inside exits 2).
inline void fork_member(const std::function<void()>& body) {
  pid_t pid = ::fork();
  if (pid < 0)
    fail("fork");
  if (pid == 0) {
    children.clear();
    body();
    std::_Exit(0);
  }
  children.push_back(pid);
}

/// Waits for every member to exit; false if one failed.
inline bool reap_members() {
  bool ok = true;
  for (pid_t child : children) {
    int status = 0;
    ok = ::waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
         ok;
  }
  children.clear();
  return ok;
}

/// An append-only log in reserved space: each record is written at the next offset and, unless
/// in memory, made durable with fdatasync before the caller goes on.
class log_file {
public:
  log_file(const std::string& path, bool memory) : memory_(memory) {
    if (memory_)
      return;
    fd_ = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd_ < 0)
      fail("open log");
    if (::fallocate(fd_, 0, 0, reserved_bytes) != 0 || ::fsync(fd_) != 0)
      fail("fallocate");
  }

  void append(const char* data, size_t n) {
    if (memory_)
      return;
    if (offset_ + static_cast<off_t>(n) > reserved_bytes)
      offset_ = 0;
    if (::pwrite(fd_, data, n, offset_) != static_cast<ssize_t>(n))
      fail("pwrite");
    if (::fdatasync(fd_) != 0)
      fail("fdatasync");
    offset_ += static_cast<off_t>(n);
  }

private:
  bool memory_;
  int fd_ = -1;
  off_t offset_ = 0;
};

result run_tcp(const options& opts);
result run_caf(const options& opts);

} // namespace cafraft::floor

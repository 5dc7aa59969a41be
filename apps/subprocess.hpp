// Helpers for programs that start cafraft-node processes on this machine (cafraft-bench, the
// process tests): a free loopback port, and a child process with its output in a file.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cafraft {

/// A port on 127.0.0.1 that nothing listens on now, never one handed out before by this
/// process (two nodes started in a row must not get the same one).
inline uint16_t free_loopback_port() {
  static std::set<uint16_t> given;
  for (;;) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    auto port = ntohs(addr.sin_port);
    if (given.insert(port).second)
      return port;
  }
}

/// In a forked child: runs `args` (args[0] is the program's path); exits 127 if it cannot.
[[noreturn]] inline void exec_or_exit(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

/// Starts `args` (args[0] is the program's path) with stdout and stderr appended to `log`.
/// Returns the child's pid.
inline pid_t start_process(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    exec_or_exit(args);
  }
  return pid;
}

} // namespace cafraft

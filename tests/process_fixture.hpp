// What the process tests share (ctest label "process"): running programs, a pseudo-terminal
// for the interactive console, and the fixture that starts cafraft-node processes on
// 127.0.0.1 with free ports.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <httplib.h>

#include "apps/admin.hpp"
#include "apps/subprocess.hpp"
#include "realtime.hpp"
#include <cafraft/actors/remote_client.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/logging.hpp>

namespace cafraft::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace pb = cafraft::pb;
using steady = std::chrono::steady_clock;

inline const std::string bin_dir = CAFRAFT_BIN_DIR;

inline uint16_t free_port() {
  return cafraft::free_loopback_port();
}

inline pid_t start(const std::vector<std::string>& args, const std::string& log) {
  return cafraft::start_process(args, log);
}

// Waits for `pid` to exit; returns its exit code (or 128 + signal), -1 on timeout.
inline int wait_exit(pid_t pid, std::chrono::milliseconds limit = 10s) {
  auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::steady_clock::now() > until)
      return -1;
    std::this_thread::sleep_for(10ms);
  }
}

/// How many times `what` occurs in `text`.
inline size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

struct run_result {
  int code = -1;
  std::string out;
};

// Runs a command to completion and captures stdout and stderr.
inline run_result run(const std::vector<std::string>& args, const std::string& dir) {
  static int n = 0;
  auto log = dir + "/cmd-" + std::to_string(++n) + ".out";
  auto pid = start(args, log);
  run_result r;
  r.code = wait_exit(pid, 30s);
  std::ifstream in{log};
  std::stringstream ss;
  ss << in.rdbuf();
  r.out = ss.str();
  return r;
}

// A program on a pseudo terminal, as a person at a keyboard would run it.
class on_pty {
public:
  explicit on_pty(const std::vector<std::string>& args) {
    winsize ws{40, 120, 0, 0};
    pid_ = ::forkpty(&fd_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      ::setenv("TERM", "dumb", 1);
      cafraft::exec_or_exit(args);
    }
  }
  ~on_pty() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait_exit(pid_);
    }
    ::close(fd_);
  }
  on_pty(const on_pty&) = delete;
  on_pty& operator=(const on_pty&) = delete;

  void type(const std::string& keys) {
    EXPECT_EQ(::write(fd_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }

  /// Reads until `text` appeared `times` times in all that was read, or `limit` passed.
  bool wait_for(const std::string& text, size_t times, std::chrono::milliseconds limit) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (count(text) < times && std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0)
        continue;
      char buf[4096];
      auto n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0)
        break;
      seen_.append(buf, static_cast<size_t>(n));
    }
    return count(text) >= times;
  }

  size_t count(const std::string& text) const {
    size_t n = 0;
    for (auto at = seen_.find(text); at != std::string::npos; at = seen_.find(text, at + 1))
      ++n;
    return n;
  }

  const std::string& seen() const { return seen_; }

  /// Waits for the program to exit; returns its exit code, -1 on timeout.
  int wait(std::chrono::milliseconds limit) {
    auto code = wait_exit(pid_, limit);
    if (code >= 0)
      pid_ = -1;
    return code;
  }

private:
  int fd_ = -1;
  pid_t pid_ = -1;
  std::string seen_;
};

using process_config = cafraft::test::network_test_config;

class ProcessCluster : public ::testing::Test {
protected:
  void SetUp() override {
    cafraft::get_logger("cafraft-client")->set_level(spdlog::level::off);
    // Like the programs, the test process writes TLS to peers that hang up (OpenSSL writes with
    // a plain write(), which raises SIGPIPE): a refused client must fail, not kill the tests.
    std::signal(SIGPIPE, SIG_IGN);
    // The programs read CAFRAFT_* variables: the developer's shell must not change the tests.
    for (auto v : {"CAFRAFT_ID",
                   "CAFRAFT_DATA_DIR",
                   "CAFRAFT_LISTEN",
                   "CAFRAFT_INITIAL_CLUSTER",
                   "CAFRAFT_JOIN",
                   "CAFRAFT_CLUSTER_ID",
                   "CAFRAFT_TLS_CERT",
                   "CAFRAFT_TLS_KEY",
                   "CAFRAFT_TLS_CA",
                   "CAFRAFT_TLS_CLIENT_CA",
                   "CAFRAFT_INSECURE",
                   "CAFRAFT_ENDPOINTS",
                   "CAFRAFT_LOG_LEVEL",
                   "CAFRAFT_RESTORE",
                   "CAFRAFT_FORCE_NEW_CLUSTER",
                   "CAFRAFT_FEATURE_LEVEL",
                   "CAFRAFT_ADMIN",
                   "CAFRAFT_LEASE_READS",
                   "CAFRAFT_CLOCK_DRIFT_PPM",
                   "CAFRAFT_SESSION_TIMEOUT_MS",
                   "CAFRAFT_QUIESCE_AFTER_MS",
                   "CAFRAFT_GROUPS",
                   "CAFRAFT_GROUP"})
      ::unsetenv(v);
    char tmpl[] = "/tmp/cafraft-process-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override {
    for (auto& [id, pid] : pids)
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        wait_exit(pid);
      }
    if (!HasFailure())
      fs::remove_all(dir);
    else
      std::printf("logs kept in %s\n", dir.c_str());
  }

  std::string address(const std::string& id) { return "127.0.0.1:" + std::to_string(ports[id]); }

  std::vector<std::string> node_args(const std::string& id, std::vector<std::string> extra) {
    std::vector<std::string> a{bin_dir + "/cafraft-node",
                               "--id",
                               id,
                               "--data-dir",
                               dir + "/" + id,
                               "--listen",
                               address(id),
                               "--election-min-ms",
                               "300",
                               "--election-max-ms",
                               "600",
                               "--heartbeat-ms",
                               "50"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  void start_node(const std::string& id, std::vector<std::string> extra) {
    if (!ports.count(id))
      ports[id] = free_port();
    pids[id] = start(node_args(id, std::move(extra)), dir + "/" + id + ".log");
  }

  // Picks a port for each of `ids` and returns their --initial-cluster value.
  std::string initial_cluster(const std::vector<std::string>& ids) {
    std::string out;
    for (auto& id : ids) {
      ports[id] = free_port();
      out += (out.empty() ? "" : ",") + id + "=" + address(id);
    }
    return out;
  }

  /// The nodes' addresses, for a remote_client.
  std::vector<std::string> addresses(const std::vector<std::string>& ids) {
    std::vector<std::string> out;
    for (auto& id : ids)
      out.push_back(address(id));
    return out;
  }

  std::string endpoints(const std::vector<std::string>& ids) {
    std::string out;
    for (auto& id : ids)
      out += (out.empty() ? "" : ",") + address(id);
    return out;
  }

  run_result ctl(const std::vector<std::string>& ids, std::vector<std::string> args,
                 std::vector<std::string> tls = {}) {
    std::vector<std::string> a{bin_dir + "/cafraftctl", "--endpoints", endpoints(ids)};
    a.insert(a.end(), tls.begin(), tls.end());
    a.insert(a.end(), args.begin(), args.end());
    return run(a, dir);
  }

  // The leader's id of Raft group `group`, as cafraftctl reports it (other than `not`).
  std::string leader(const std::vector<std::string>& ids, const std::string& not_this = {},
                     std::chrono::milliseconds limit = 10s, uint64_t group = 0) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      auto r = ctl(ids, {"--group", std::to_string(group), "leader"});
      auto id = r.out.substr(0, r.out.find(' '));
      if (r.code == 0 && id != not_this)
        return id;
      std::this_thread::sleep_for(100ms);
    }
    return {};
  }

  std::string dir;
  std::map<std::string, uint16_t> ports;
  std::map<std::string, pid_t> pids;
};

// Prints how long the test has run, for finding slow phases.
struct phase_clock {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  void operator()(const char* what) const {
    auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[%6.2f s] %s\n", s, what);
  }
};

} // namespace cafraft::test

// cafraft-node's options (apps/node_options.cpp): the command line, the --config file (CLI11,
// TOML or INI) and the CAFRAFT_* environment variables, parsed by parse_node_flags() and checked
// by validate_node_flags() as apps/node_main.cpp does, with the checks that look at the machine
// (data directory, listen address, TLS files) answered by the input. Neither may crash or exit;
// options that validate are ones the node can start with.
//
// Input: u8 setup (bit 0: the data directory holds data; bit 1: the listen check fails; bit 2:
// the TLS check fails; bit 3: a config file is given), a blob: the config file (read through a
// memfd, given as --config FILE before the other arguments), u8 how many environment
// variables, each a u8 (which CAFRAFT_* name) and a blob (its value), then the arguments,
// separated by NUL bytes.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "apps/node_options.hpp"
#include "fuzz_common.hpp"
#include <cafraft/actors/peer.hpp>

using namespace cafraft;
namespace fz = cafraft::fuzz;

namespace {

const char* const env_names[] = {
    "CAFRAFT_ID",
    "CAFRAFT_DATA_DIR",
    "CAFRAFT_LISTEN",
    "CAFRAFT_INITIAL_CLUSTER",
    "CAFRAFT_JOIN",
    "CAFRAFT_CLUSTER_ID",
    "CAFRAFT_TLS_CERT",
    "CAFRAFT_TLS_KEY",
    "CAFRAFT_TLS_CA",
    "CAFRAFT_INSECURE",
    "CAFRAFT_ELECTION_MIN_MS",
    "CAFRAFT_ELECTION_MAX_MS",
    "CAFRAFT_HEARTBEAT_MS",
    "CAFRAFT_ADMIN",
    "CAFRAFT_SCHEDULER",
    "CAFRAFT_THREADS",
    "CAFRAFT_LOG_LEVEL",
};
constexpr size_t env_count = sizeof(env_names) / sizeof(env_names[0]);

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz::input in{data, size};
  auto setup = in.u8();
  auto config = in.blob();
  std::vector<std::string> set;
  for (auto n = in.u8() % 8; n > 0; --n) {
    auto name = env_names[in.u8() % env_count];
    std::string value{in.blob()};
    if (value.find('\0') != std::string::npos)
      value.resize(value.find('\0'));
    setenv(name, value.c_str(), 1);
    set.push_back(name);
  }
  std::vector<std::string> args{"cafraft-node"};
  int fd = -1;
  if ((setup & 8) != 0) {
    fd = memfd_create("config", 0);
    FUZZ_CHECK(fd >= 0, "memfd_create");
    FUZZ_CHECK(write(fd, config.data(), config.size()) == static_cast<ssize_t>(config.size()),
               "write to the memfd");
    args.push_back("--config");
    args.push_back("/proc/self/fd/" + std::to_string(fd));
  }
  std::string arg;
  for (char c : in.rest()) {
    if (c == '\0') {
      args.push_back(arg);
      arg.clear();
    } else {
      arg += c;
    }
  }
  if (!arg.empty())
    args.push_back(arg);
  std::vector<const char*> argv;
  for (auto& a : args)
    argv.push_back(a.c_str());
  argv.push_back(nullptr);

  node_flags f;
  auto parsed = parse_node_flags(static_cast<int>(args.size()), argv.data(), f);
  if (parsed.exit) {
    FUZZ_CHECK(parsed.exit_code != 0 || parsed.err.empty(), "success with an error message");
    FUZZ_CHECK(parsed.exit_code == 0 || !parsed.err.empty(), "an error without a message");
  } else {
    node_checks checks;
    checks.has_data = [&](const std::string&, std::error_code&) { return (setup & 1) != 0; };
    checks.check_listen = [&](const std::string& a) {
      return (setup & 2) != 0 ? "cannot listen on " + a : std::string{};
    };
    checks.check_tls = [&](const std::string&, const std::string&, const std::string&) {
      return (setup & 4) != 0 ? std::string{"bad TLS files"} : std::string{};
    };
    std::vector<member> members;
    std::vector<std::string> join;
    auto why = validate_node_flags(f, members, join, checks);
    if (why.empty()) {
      // What apps/node_main.cpp goes on to do with the options.
      std::string host;
      uint16_t port = 0;
      FUZZ_CHECK(split_address(f.listen, host, port), "--listen accepted but not HOST:PORT");
      FUZZ_CHECK(!f.id.empty() && !f.data_dir.empty(), "no id or data directory");
      FUZZ_CHECK(f.election_min_ms > 0 && f.heartbeat_ms > 0 &&
                     f.heartbeat_ms < f.election_min_ms && f.election_min_ms <= f.election_max_ms,
                 "timeouts accepted out of order");
      FUZZ_CHECK(f.sched.policy == "sharing" || f.sched.policy == "stealing",
                 "scheduler %s accepted", f.sched.policy.c_str());
      FUZZ_CHECK(f.sched.threads <= max_scheduler_threads,
                 "--threads %zu accepted: CAF starts that many threads or dies trying",
                 f.sched.threads);
      node_config nc;
      nc.id = f.id;
      nc.address = f.listen;
      nc.members = members;
      nc.data_dir = f.data_dir;
      nc.cluster_id = f.cluster_id;
      nc.election_timeout_min = std::chrono::milliseconds{f.election_min_ms};
      nc.election_timeout_max = std::chrono::milliseconds{f.election_max_ms};
      nc.heartbeat_interval = std::chrono::milliseconds{f.heartbeat_ms};
      auto invalid = validate(nc);
      FUZZ_CHECK(invalid.empty(), "options accepted, but the node refuses them: %s",
                 invalid.c_str());
      for (auto& a : join)
        FUZZ_CHECK(split_address(a, host, port), "--join %s accepted", a.c_str());
    }
  }
  if (fd >= 0)
    close(fd);
  for (auto& name : set)
    unsetenv(name.c_str());
  return 0;
}

#include "netlab.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cafraft::nemesis {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

std::string resolve(const std::string& name) {
  if (name.find('/') != std::string::npos)
    return name;
  for (auto dir :
       {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/", "/usr/local/sbin/", "/usr/local/bin/"}) {
    auto path = dir + name;
    if (::access(path.c_str(), X_OK) == 0)
      return path;
  }
  return name;
}

std::vector<char*> argv_of(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// In a forked child of a multi-threaded process: only async-signal-safe calls from here on.
void reset_signals_in_child() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

std::string join(const std::vector<std::string>& args) {
  std::string out;
  for (auto& a : args)
    out += (out.empty() ? "" : " ") + a;
  return out;
}

// Whether `pid` is a running test process of this tier (pids get reused).
bool test_process_alive(pid_t pid) {
  std::ifstream comm{"/proc/" + std::to_string(pid) + "/comm"};
  std::string name;
  std::getline(comm, name);
  return comm && name.rfind("cafraft-nemesis", 0) == 0;
}

void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  // Our own children are reaped; others' are reaped by their parent or init.
  for (int i = 0; i < 100; ++i) {
    auto r = ::waitpid(pid, nullptr, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD))
      return;
    std::this_thread::sleep_for(10ms);
  }
}

} // namespace

cmd_result run_cmd(const std::vector<std::string>& args_in, std::chrono::milliseconds limit,
                   const std::string& input) {
  std::vector<std::string> args = args_in;
  args[0] = resolve(args[0]);
  auto argv = argv_of(args);
  int out[2], in[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0)
    return {-1, "pipe: " + std::string{std::strerror(errno)}};
  pid_t pid = ::fork();
  if (pid == 0) {
    reset_signals_in_child();
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  if (pid < 0) {
    ::close(in[1]);
    ::close(out[0]);
    return {-1, "fork: " + std::string{std::strerror(errno)}};
  }
  if (!input.empty()) {
    auto ignore = ::signal(SIGPIPE, SIG_IGN);
    size_t done = 0;
    while (done < input.size()) {
      auto n = ::write(in[1], input.data() + done, input.size() - done);
      if (n <= 0)
        break;
      done += static_cast<size_t>(n);
    }
    ::signal(SIGPIPE, ignore);
  }
  ::close(in[1]);
  cmd_result r;
  auto until = steady::now() + limit;
  bool timed_out = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
    if (left <= 0ms) {
      timed_out = true;
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100))) <= 0)
      continue;
    char buf[4096];
    auto n = ::read(out[0], buf, sizeof(buf));
    if (n <= 0)
      break;
    r.out.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  if (timed_out) {
    kill_and_reap(pid);
    r.code = -1;
    r.out += "\n(killed after " + std::to_string(limit.count()) + " ms)";
    return r;
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
  r.code = wait_exit(pid, std::max(left, 100ms));
  if (r.code < 0)
    kill_and_reap(pid);
  return r;
}

pid_t spawn_in(const std::string& netns, const std::vector<std::string>& args_in,
               const std::string& log) {
  std::vector<std::string> args = args_in;
  auto argv = argv_of(args);
  int ns_fd = -1;
  if (!netns.empty()) {
    ns_fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0)
      return -1;
  }
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    reset_signals_in_child();
    // Dies with the thread that started it, even when the test is killed with SIGKILL.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(126);
    // Its own process group: a ^C at the terminal reaches the test, which stops the nodes.
    ::setpgid(0, 0);
    if (ns_fd >= 0 && ::setns(ns_fd, CLONE_NEWNET) != 0)
      ::_exit(125);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (ns_fd >= 0)
    ::close(ns_fd);
  if (log_fd >= 0)
    ::close(log_fd);
  if (null_fd >= 0)
    ::close(null_fd);
  return pid;
}

int wait_exit(pid_t pid, std::chrono::milliseconds limit) {
  auto until = steady::now() + limit;
  for (;;) {
    int status = 0;
    auto r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0)
      return 255; // not our child (any more)
    if (steady::now() >= until)
      return -1;
    std::this_thread::sleep_for(10ms);
  }
}

std::vector<std::string> namespaces_with_prefix(const std::string& prefix) {
  std::vector<std::string> out;
  auto r = run_cmd({"ip", "netns", "list"});
  std::istringstream lines{r.out};
  std::string line;
  while (std::getline(lines, line)) {
    auto name = line.substr(0, line.find(' '));
    if (name.rfind(prefix, 0) == 0)
      out.push_back(name);
  }
  return out;
}

std::vector<std::string> sweep_leftovers(pid_t own_pid) {
  std::vector<std::string> done;
  auto gone = [own_pid](pid_t pid) { return pid == own_pid || !test_process_alive(pid); };
  static const std::regex ns_name{"^cfn([0-9]+)r[0-9]+-.*"};
  for (auto& ns : namespaces_with_prefix("cfn")) {
    std::smatch m;
    if (!std::regex_match(ns, m, ns_name) || !gone(static_cast<pid_t>(std::stol(m[1]))))
      continue;
    auto pids = run_cmd({"ip", "netns", "pids", ns});
    std::istringstream in{pids.out};
    pid_t p = 0;
    while (in >> p)
      if (p > 1 && p != ::getpid()) {
        kill_and_reap(p);
        done.push_back("killed pid " + std::to_string(p) + " in " + ns);
      }
    auto del = run_cmd({"ip", "netns", "del", ns});
    done.push_back("removed namespace " + ns + (del.code == 0 ? "" : " (failed: " + del.out + ")"));
  }
  // tmpfs mounts of the runs' data directories, deepest first.
  static const std::regex mount_dir{".*/cafraft-nemesis-([0-9]+)-[^ ]*"};
  std::vector<std::string> mounts;
  std::ifstream in{"/proc/self/mounts"};
  std::string dev, dir, rest;
  while (in >> dev >> dir && std::getline(in, rest)) {
    std::smatch m;
    if (std::regex_match(dir, m, mount_dir) && gone(static_cast<pid_t>(std::stol(m[1]))))
      mounts.push_back(dir);
  }
  std::sort(mounts.rbegin(), mounts.rend());
  for (auto& d : mounts) {
    ::umount2(d.c_str(), MNT_DETACH);
    done.push_back("unmounted " + d);
  }
  return done;
}

// ---------------------------------------------------------------------------------------------

netlab::netlab(int nodes) : nodes_(nodes) {
  static int runs = 0;
  auto pid = std::to_string(::getpid());
  prefix_ = "cfn" + pid + "r" + std::to_string(++runs);
  bridge_ = "cfnb" + pid;
  veth_prefix_ = "cfv" + pid;
  auto must = [this](const std::vector<std::string>& args) {
    auto r = ip(args);
    if (r.code != 0) {
      auto why = "ip " + join(args) + " failed (" + std::to_string(r.code) + "): " + r.out;
      destroy();
      throw std::runtime_error(why);
    }
  };
  must({"netns", "add", hub_ns()});
  must({"-n", hub_ns(), "link", "add", bridge_, "type", "bridge"});
  must({"-n", hub_ns(), "link", "set", bridge_, "up"});
  auto attach = [&](const std::string& ns, const std::string& veth, const std::string& addr) {
    must({"netns", "add", ns});
    must(
        {"-n", hub_ns(), "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns});
    must({"-n", hub_ns(), "link", "set", veth, "master", bridge_});
    must({"-n", hub_ns(), "link", "set", veth, "up"});
    must({"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"});
    must({"-n", ns, "link", "set", "eth0", "up"});
    must({"-n", ns, "link", "set", "lo", "up"});
  };
  for (int i = 0; i < nodes; ++i)
    attach(node_ns(i), veth_prefix_ + "n" + std::to_string(i + 1), node_ip(i));
  attach(client_ns(), veth_prefix_ + "c", client_ip());
}

netlab::~netlab() {
  destroy();
  if (home_ns_fd_ >= 0)
    ::close(home_ns_fd_);
}

std::string netlab::node_ns(int i) const {
  return prefix_ + "-n" + std::to_string(i + 1);
}
std::string netlab::client_ns() const {
  return prefix_ + "-c";
}
std::string netlab::hub_ns() const {
  return prefix_ + "-hub";
}
std::string netlab::node_ip(int i) {
  return "10.78.0." + std::to_string(i + 1);
}
std::string netlab::client_ip() {
  return "10.78.0.100";
}

cmd_result netlab::ip(const std::vector<std::string>& args) {
  std::vector<std::string> a{"ip"};
  a.insert(a.end(), args.begin(), args.end());
  return run_cmd(a);
}

void netlab::apply(const cut_set& cuts) {
  for (int i = 0; i < nodes_; ++i) {
    auto peers_of = [i](const cut_set& c) {
      std::vector<int> out;
      for (auto [a, b] : c) {
        if (a == i)
          out.push_back(b);
        else if (b == i)
          out.push_back(a);
      }
      std::sort(out.begin(), out.end());
      return out;
    };
    auto want = peers_of(cuts);
    if (want == peers_of(cuts_))
      continue;
    std::string rules = "flush ruleset\n";
    if (!want.empty()) {
      std::string set;
      for (auto j : want)
        set += (set.empty() ? "" : ", ") + node_ip(j);
      rules += "table inet cfnemesis {\n"
               "  chain input { type filter hook input priority 0; policy accept; ip saddr { " +
               set +
               " } drop; }\n"
               "  chain output { type filter hook output priority 0; policy accept; "
               "ip daddr { " +
               set + " } drop; }\n}\n";
    }
    auto r = run_cmd({"ip", "netns", "exec", node_ns(i), "nft", "-f", "-"}, 10s, rules);
    if (r.code != 0)
      throw std::runtime_error("nft in " + node_ns(i) + " failed (" + std::to_string(r.code) +
                               "): " + r.out + "\nrules:\n" + rules);
  }
  cuts_ = cuts;
}

void netlab::enter_client_ns() {
  if (home_ns_fd_ < 0)
    home_ns_fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int fd = ::open(("/run/netns/" + client_ns()).c_str(), O_RDONLY | O_CLOEXEC);
  if (home_ns_fd_ < 0 || fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
    auto why = std::string{std::strerror(errno)};
    if (fd >= 0)
      ::close(fd);
    throw std::runtime_error("cannot enter the clients' namespace " + client_ns() + ": " + why);
  }
  ::close(fd);
}

void netlab::back() {
  if (home_ns_fd_ >= 0)
    ::setns(home_ns_fd_, CLONE_NEWNET);
}

std::string netlab::destroy() {
  if (destroyed_)
    return {};
  destroyed_ = true;
  back();
  std::string problems;
  for (auto& ns : namespaces_with_prefix(prefix_ + "-")) {
    auto pids = run_cmd({"ip", "netns", "pids", ns});
    std::istringstream in{pids.out};
    pid_t p = 0;
    while (in >> p)
      if (p > 1 && p != ::getpid())
        kill_and_reap(p);
    auto r = run_cmd({"ip", "netns", "del", ns});
    if (r.code != 0)
      problems += "ip netns del " + ns + ": " + r.out + "\n";
  }
  for (auto& ns : namespaces_with_prefix(prefix_ + "-"))
    problems += "namespace " + ns + " is still there\n";
  return problems;
}

// ---------------------------------------------------------------------------------------------

small_tmpfs::small_tmpfs(std::string dir, uint64_t megabytes)
    : dir_(std::move(dir)), mb_(megabytes) {
  ::mkdir(dir_.c_str(), 0755);
  auto opts = "size=" + std::to_string(mb_) + "m,mode=0755";
  if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
    throw std::runtime_error("cannot mount a tmpfs on " + dir_ + ": " + std::strerror(errno));
  mounted_ = true;
}

small_tmpfs::~small_tmpfs() {
  unmount();
}

void small_tmpfs::unmount() {
  if (mounted_)
    ::umount2(dir_.c_str(), MNT_DETACH);
  mounted_ = false;
}

uint64_t small_tmpfs::free_bytes() const {
  struct statvfs s {};
  if (::statvfs(dir_.c_str(), &s) != 0)
    return 0;
  return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
}

uint64_t small_tmpfs::used_bytes() const {
  struct statvfs s {};
  if (::statvfs(dir_.c_str(), &s) != 0)
    return 0;
  return static_cast<uint64_t>(s.f_blocks - s.f_bfree) * s.f_frsize;
}

bool small_tmpfs::resize(uint64_t megabytes) {
  auto opts = "size=" + std::to_string(megabytes) + "m";
  if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
    return false;
  mb_ = megabytes;
  return true;
}

uint64_t small_tmpfs::fill() {
  auto path = dir_ + "/filler";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return 0;
  static const std::string chunk(64 * 1024, 'x');
  uint64_t total = 0;
  for (size_t size : {chunk.size(), size_t{4096}, size_t{1}})
    for (;;) {
      auto n = ::write(fd, chunk.data(), size);
      if (n <= 0)
        break;
      total += static_cast<uint64_t>(n);
    }
  ::close(fd);
  return total;
}

void small_tmpfs::unfill() {
  ::unlink((dir_ + "/filler").c_str());
}

} // namespace cafraft::nemesis

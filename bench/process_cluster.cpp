#include "bench/process_cluster.hpp"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apps/network.hpp"
#include "apps/subprocess.hpp"

namespace cafraft::bench {

double cpu_seconds_of(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::istringstream rest{text.substr(close + 2)};
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14)
      utime = std::stoull(field);
    if (i == 15)
      stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double own_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

double peak_rss_mb_of(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stod(line.substr(6)) / 1024.0; // kB
  return 0;
}

process_cluster::process_cluster(int n, const std::string& root, std::vector<std::string> extra)
    : root_(root), extra_(std::move(extra)) {
  auto exe = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "cafraft-node";
  node_bin_ = exe.string();
  for (int i = 1; i <= n; ++i) {
    auto id = "n" + std::to_string(i);
    ids_.push_back(id);
    addresses_[id] = "127.0.0.1:" + std::to_string(cafraft::free_loopback_port());
  }
  for (auto& id : ids_)
    initial_ += (initial_.empty() ? "" : ",") + id + "=" + addresses_[id];
  for (auto& id : ids_)
    start(id);
}
process_cluster::~process_cluster() {
  for (auto& [id, pid] : pids_)
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
}

void process_cluster::start(const std::string& id) {
  auto log = root_ + "/" + id + ".log";
  std::vector<std::string> args{node_bin_,
                                "--id",
                                id,
                                "--data-dir",
                                root_ + "/" + id,
                                "--listen",
                                addresses_[id],
                                "--initial-cluster",
                                initial_,
                                "--insecure",
                                "--log-level",
                                "warn"};
  args.insert(args.end(), extra_.begin(), extra_.end());
  pids_[id] = cafraft::start_process(args, log);
}

void process_cluster::kill(const std::string& id) {
  auto pid = pids_[id];
  if (pid <= 0)
    return;
  cpu_of_dead_ += cpu_seconds_of(pid);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  pids_[id] = 0;
}

std::vector<std::string> process_cluster::endpoints() const {
  std::vector<std::string> out;
  for (auto& id : ids_)
    out.push_back(addresses_.at(id));
  return out;
}
std::string process_cluster::id_at(const std::string& address) const {
  for (auto& [id, a] : addresses_)
    if (a == address)
      return id;
  return {};
}
double process_cluster::peak_rss_mb() const {
  double most = 0;
  for (auto& [id, pid] : pids_)
    if (pid > 0)
      most = std::max(most, peak_rss_mb_of(pid));
  return most;
}
double process_cluster::cpu_seconds() const {
  double sum = cpu_of_dead_;
  for (auto& [id, pid] : pids_)
    if (pid > 0)
      sum += cpu_seconds_of(pid);
  return sum;
}

} // namespace cafraft::bench

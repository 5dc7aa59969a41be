// cafraft-bench's cluster of cafraft-node processes (--spawn N --processes), and what it
// reads of processes: CPU time and peak resident memory.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <sys/types.h>

namespace cafraft::bench {

/// CPU seconds (user and system) process `pid` has used, 0 when unknown.
double cpu_seconds_of(pid_t pid);
/// CPU seconds this process has used.
double own_cpu_seconds();
/// Peak resident memory of process `pid` in MB (VmHWM), 0 when unknown.
double peak_rss_mb_of(pid_t pid);

// cafraft-node processes on 127.0.0.1 (--spawn N --processes), each with its data directory
// and log under `root`. The destructor stops those still running (SIGTERM).
class process_cluster {
public:
  /// `extra`: more flags for every node (--lease-reads for lease reads).
  process_cluster(int n, const std::string& root, std::vector<std::string> extra = {});
  ~process_cluster();
  process_cluster(const process_cluster&) = delete;
  process_cluster& operator=(const process_cluster&) = delete;

  /// Starts node `id` (again, after kill(): from its data directory).
  void start(const std::string& id);
  /// kill -9 of node `id`; its CPU time so far still counts in cpu_seconds().
  void kill(const std::string& id);

  std::vector<std::string> endpoints() const;
  std::string id_at(const std::string& address) const;
  /// The largest peak resident memory of the running nodes, in MB.
  double peak_rss_mb() const;
  /// CPU seconds of all nodes, killed ones included.
  double cpu_seconds() const;

private:
  std::string root_, node_bin_, initial_;
  std::vector<std::string> ids_, extra_;
  std::map<std::string, std::string> addresses_;
  std::map<std::string, pid_t> pids_;
  double cpu_of_dead_ = 0;
};

} // namespace cafraft::bench

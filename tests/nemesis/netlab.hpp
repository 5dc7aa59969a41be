// The nemesis tier's laboratory (ctest label nemesis): network namespaces on one Linux bridge,
// partitions made with nft rules inside them, programs started inside a namespace, small tmpfs
// mounts for a full disk, and the sweep that removes what a killed earlier run left behind.
//
// Layout of one run (P is "cfn<pid>r<run>", the pid of the test process):
//   P-hub            holds the bridge cfnb<pid> and the host ends cfv<pid>n1..., cfv<pid>c of
//                    the veth pairs; it has no address at all
//   P-n1 ... P-n5    one per node: eth0 with 10.78.0.1 ... 10.78.0.5/24, and lo
//   P-c              the clients: eth0 with 10.78.0.100/24
// Nothing is created in the root namespace: deleting the namespaces deletes every interface.
//
// Programs are forked from the thread that owns the lab (the test's main thread): a node gets
// PR_SET_PDEATHSIG, which fires when the thread that forked it ends.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace cafraft::nemesis {

struct cmd_result {
  int code = -1;   // exit code, 128 + signal, or -1 when it did not end in time (then killed)
  std::string out; // stdout and stderr
};

/// Runs a program (args[0] a name found in /usr/sbin, /sbin, /usr/bin, /bin, or a path) to its
/// end, at most `limit`, feeding it `input`; captures stdout and stderr.
cmd_result run_cmd(const std::vector<std::string>& args,
                   std::chrono::milliseconds limit = std::chrono::seconds{10},
                   const std::string& input = {});

/// Starts `args` (args[0] a path) inside the network namespace `netns` (a name under
/// /run/netns; empty: the caller's), with stdout and stderr appended to `log`. The child dies
/// with the calling thread (PR_SET_PDEATHSIG). Returns the pid (-1 on failure).
pid_t spawn_in(const std::string& netns, const std::vector<std::string>& args,
               const std::string& log);

/// Waits up to `limit` for `pid` to exit: its exit code, 128 + signal, or -1 (still running).
int wait_exit(pid_t pid, std::chrono::milliseconds limit);

/// Removes what runs of this test left behind when they were killed (namespaces named
/// cfn<pid>r..., the processes inside them, tmpfs mounts under /tmp/cafraft-nemesis-<pid>-...)
/// whose test process is gone, and those of `own_pid` (this process: nothing of a run may
/// outlive it). Returns one line per thing removed.
std::vector<std::string> sweep_leftovers(pid_t own_pid = 0);

/// The names of network namespaces that start with `prefix`.
std::vector<std::string> namespaces_with_prefix(const std::string& prefix);

/// A set of links that do not carry packets: pairs of node indexes (0-based), both ways.
using cut_set = std::set<std::pair<int, int>>;

class netlab {
public:
  /// Creates the namespaces, the bridge and the veth pairs for `nodes` nodes and the clients.
  /// Throws std::runtime_error (with the failing command's output) when it cannot.
  explicit netlab(int nodes);
  /// Removes every namespace of the run (and with them the bridge and the veths), after
  /// killing whatever still runs inside them.
  ~netlab();
  netlab(const netlab&) = delete;
  netlab& operator=(const netlab&) = delete;

  const std::string& prefix() const { return prefix_; }
  std::string node_ns(int i) const;
  std::string client_ns() const;
  std::string hub_ns() const;
  static std::string node_ip(int i); // 10.78.0.(i+1)
  static std::string client_ip();    // 10.78.0.100
  int nodes() const { return nodes_; }

  /// Cuts exactly the links in `cuts` (node to node; the clients always reach every node):
  /// each node's namespace drops packets from and to the nodes it is cut from. Replaces the
  /// previous cuts. Throws std::runtime_error when nft fails.
  void apply(const cut_set& cuts);
  void heal() { apply({}); }
  const cut_set& cuts() const { return cuts_; }

  /// Moves the calling thread into the clients' namespace (threads it creates later follow);
  /// back() returns it to where it was. Throws std::runtime_error when setns fails.
  void enter_client_ns();
  void back();

  /// Removes everything now (the destructor does it too); returns what could not be removed.
  std::string destroy();

private:
  cmd_result ip(const std::vector<std::string>& args);
  std::string prefix_;
  std::string bridge_, veth_prefix_;
  int nodes_;
  cut_set cuts_;
  int home_ns_fd_ = -1;
  bool destroyed_ = false;
};

/// A tmpfs of `megabytes` MiB mounted at `dir` (created), unmounted (lazily) on destruction.
class small_tmpfs {
public:
  small_tmpfs(std::string dir, uint64_t megabytes);
  ~small_tmpfs();
  small_tmpfs(const small_tmpfs&) = delete;
  small_tmpfs& operator=(const small_tmpfs&) = delete;

  const std::string& dir() const { return dir_; }
  uint64_t free_bytes() const;
  uint64_t used_bytes() const;
  uint64_t size_mb() const { return mb_; }
  /// Sets the size to `megabytes` (tmpfs refuses less than it holds).
  bool resize(uint64_t megabytes);
  /// Fills the free space with a file `filler`: the next write that needs a new page fails
  /// with ENOSPC. Returns the bytes written.
  uint64_t fill();
  /// Removes the filler.
  void unfill();
  void unmount();

private:
  std::string dir_;
  uint64_t mb_;
  bool mounted_ = false;
};

} // namespace cafraft::nemesis

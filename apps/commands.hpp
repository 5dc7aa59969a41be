// The cluster commands of cafraftctl and cafraft-console: one session (an actor system and a
// redirect-following client), and one function per command, each printing its result as a
// table or JSON and returning the exit code both tools document:
// 0 ok, 1 usage, 2 failed or unhealthy, 3 no endpoint reachable.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <nlohmann/json.hpp>

#include "apps/network.hpp"
#include <cafraft/actors/remote_client.hpp>
#include <cafraft/messages/api.hpp>

namespace cafraft::cli {

constexpr int exit_ok = 0, exit_usage = 1, exit_failed = 2, exit_unreachable = 3;

using json = nlohmann::ordered_json;

struct session_options {
  std::string program; // prefixes error messages
  std::vector<std::string> endpoints;
  std::string format = "table"; // or "json"
  int timeout_ms = 5000;
  std::string tls_cert, tls_key, tls_ca;
  uint64_t group = 0; // the Raft group the commands are for (docs/groups.md)
};

/// Checks the options a user gave (endpoint list, TLS files, timeout). Returns an error message
/// or "".
std::string check(session_options& o, const std::string& endpoint_list);

/// An actor system with the middleman and a client that dials the endpoints.
class session {
public:
  explicit session(const session_options& o);

  const session_options& opts() const { return opts_; }
  bool json_out() const { return opts_.format == "json"; }
  caf::actor_system& system() { return sys_; }
  remote_client& client() { return client_; }

  /// The configuration as the leader has it (any node's view when no leader is known).
  std::optional<pb::NodeStatus> view();

  /// Prints "<program>: <error>" and returns exit_failed, or exit_unreachable when no
  /// endpoint was reached.
  int fail(const caf::error& e, bool reached) const;

private:
  session_options opts_;
  network_config cfg_;
  caf::actor_system sys_;
  remote_client client_;
};

int put(session& s, const std::string& key, const std::string& value);
/// A read's options (cafraftctl get).
struct get_options {
  std::string range_end; // a range read: [key, range_end)
  bool prefix = false;   // every key with the key as its prefix
  uint32_t limit = 0;    // at most this many keys of a range
  std::string read = "linearizable";
  uint64_t min_index = 0;
};

/// The exclusive end of the keys that start with `prefix` (etcd's rule): the prefix with its
/// last byte below 0xff incremented and what follows dropped; "\0" (every key) when there is
/// no such byte.
std::string prefix_end(const std::string& prefix);

int get(session& s, const std::string& key, const get_options& opts = {});

/// A watch's options (cafraftctl watch).
struct watch_options {
  std::string range_end; // the keys in [key, range_end)
  bool prefix = false;   // every key with the key as its prefix
  uint64_t from = 0;     // the first index (0: the next change)
  uint64_t count = 0;    // exit after this many changes (0: until interrupted)
};

/// Prints every change of the keys in commit order, one line each; resumes after a watch
/// overflow, and on the next endpoint when its node goes away, from the index after the last
/// change printed.
int watch(session& s, const std::string& key, const watch_options& opts);
int del(session& s, const std::string& key);
/// Sets `key` to `value` if it is `expected` now (or absent, with `expect_absent`).
int cas(session& s, const std::string& key, const std::string& expected, const std::string& value,
        bool expect_absent);
/// One row per member of the leader's configuration, with role, term, indexes and lag;
/// unreachable members included (exit 2).
int member_list(session& s);
/// Adds a member by id and HOST:PORT (incarnation 0: the node claims it when it joins).
int member_add(session& s, const std::string& id, const std::string& address);
int member_remove(session& s, const std::string& id);
int leader(session& s);
/// Hands the leadership to `id`, or to the most up-to-date voter when `id` is empty.
int leader_transfer(session& s, const std::string& id);
/// One row per endpoint.
int status(session& s);
/// One row per group the endpoints' processes host: its leader and term as the replica with
/// the highest term sees them, its members, its highest applied index (docs/groups.md).
int group_list(session& s);
/// Starts group `group` on the processes of `members` (ids of group 0's members, comma
/// separated; empty: all of them), each process its replica (docs/groups.md).
int group_create(session& s, uint64_t group, const std::string& members);
/// Moves the leadership of groups from the processes that lead the most to those that lead the
/// fewest, one transfer at a time, until no move narrows the gap (docs/groups.md).
int balance(session& s);
/// Stops group `group` on every process of group 0's members and deletes its data.
int group_remove(session& s, uint64_t group);
/// Streams a snapshot the leader takes now into the backup file `file` (runtime/backup.hpp).
int snapshot_save(session& s, const std::string& file);
/// Checks backup file `file` whole and describes it; exit 2 when it is unusable. Needs no
/// cluster.
int snapshot_status(const std::string& program, const std::string& file, bool json_out);

/// Prints rows as aligned columns.
void print_table(const std::vector<std::vector<std::string>>& rows);
void print_json(const json& j);

} // namespace cafraft::cli

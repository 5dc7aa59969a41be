// Three cafraft nodes in one CAF application, for the examples that take a cluster through a
// leader crash and a snapshot install (examples/kv_failover.cpp, examples/lock_service/): start
// and crash nodes over their data directories, find the leader, make a client, check a step.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include <cafraft/actors/client.hpp>
#include <cafraft/actors/node.hpp>

namespace example {

inline int failures = 0;

/// Prints one step of the example and counts the ones that failed.
inline void check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  failures += ok ? 0 : 1;
}

/// Polls `done` for up to 4 s: what a node does after it answered (a state machine restoring a
/// snapshot it was handed) is seen a moment later.
template <class Predicate> bool eventually(Predicate done) {
  for (int i = 0; i < 200; ++i) {
    if (done())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return false;
}

struct cluster {
  /// Makes a node's state machine; `restored` is the node's to set when it restores a snapshot
  /// (what it stores is up to the example).
  using machine_factory = std::function<std::unique_ptr<cafraft::state_machine>(
      std::shared_ptr<std::atomic<uint64_t>> restored)>;

  cluster(caf::actor_system& s, std::string d, machine_factory f)
      : sys(s), dir(std::move(d)), make_machine(std::move(f)) {}

  caf::actor_system& sys;
  std::string dir;
  machine_factory make_machine;
  std::vector<cafraft::member> members{{"a", "a:1"}, {"b", "b:1"}, {"c", "c:1"}};
  std::map<std::string, caf::actor> nodes;
  std::map<std::string, std::shared_ptr<std::atomic<uint64_t>>> restored;

  cafraft::node_config config(const std::string& id) {
    using namespace std::chrono_literals;
    cafraft::node_config nc;
    nc.id = id;
    nc.members = members;
    nc.data_dir = dir + "/" + id;
    nc.election_timeout_min = 150ms;
    nc.election_timeout_max = 300ms;
    nc.heartbeat_interval = 50ms;
    nc.snapshot_entries = 20; // snapshots often: the log is compacted behind the leader
    auto seen = restored[id] = std::make_shared<std::atomic<uint64_t>>(0);
    nc.make_state_machine = [f = make_machine, seen] { return f(seen); };
    return nc;
  }

  bool start(const std::string& id) {
    // A node that just stopped may still hold its data directory's lock for a moment.
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (auto n = cafraft::spawn_node(sys, config(id))) {
        nodes[id] = *n;
        cafraft::connect_all(nodes);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    return false;
  }

  /// Kills the node as a crash would: its disk stays.
  void crash(const std::string& id) {
    caf::scoped_actor self{sys};
    self->monitor(nodes[id]);
    caf::anon_send_exit(nodes[id], caf::exit_reason::kill);
    self->receive([](caf::down_msg&) {});
    nodes.erase(id);
  }

  void stop_all() {
    for (auto& [id, n] : nodes)
      caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
    nodes.clear();
  }

  /// A client of the nodes running now (it follows redirects to the leader).
  std::unique_ptr<cafraft::client> client() {
    return std::make_unique<cafraft::client>(sys, nodes);
  }

  std::string leader() {
    for (int i = 0; i < 100; ++i) {
      auto c = client();
      for (auto& [id, n] : nodes)
        if (auto st = c->status(id); st && st->role() == "leader")
          return id;
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    return {};
  }

  /// A member other than `id`.
  std::string other_than(const std::string& id) const {
    for (auto& m : members)
      if (m.id != id)
        return m.id;
    return {};
  }

  /// Waits until `id` has applied what the leader had applied when this was called.
  bool caught_up(const std::string& id, const std::string& leader_id) {
    auto c = client();
    auto target = c->status(leader_id);
    return target && eventually([&] {
             auto st = c->status(id);
             return st && st->applied_index() >= target->applied_index();
           });
  }
};

} // namespace example

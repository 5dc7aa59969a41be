// Test harness for deterministic cluster tests under CAF's test scheduler (virtual time):
//   - network: a fault plan that the link actors consult (loss, duplication, delay,
//     directed cuts and partitions), all drawn from one seeded random source;
//   - invariant_checker: the step observer that checks Raft's safety properties after every
//     step of every role actor and every applied entry;
//   - cluster: N nodes wired through link actors, with stop/restart on the same storage;
//   - driver: runs ready actors (in seeded random order when asked) and advances virtual time.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "crash_disk.hpp"
#include <cafraft/actors/node.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/observer.hpp>
#include <cafraft/runtime/storage.hpp>

namespace cafraft::test {

using namespace std::chrono_literals;

struct test_config : caf::actor_system_config {
  test_config();
};

class network {
public:
  explicit network(uint64_t seed) : rng(seed) {}

  std::mt19937_64 rng;
  double loss = 0;      // probability a message is dropped
  double duplicate = 0; // probability a message is delivered twice
  double delay = 0;     // probability a message is held back (reordering it)
  std::chrono::milliseconds max_delay{40};
  std::set<std::pair<std::string, std::string>> cut; // directed (from, to) that drop all
  /// Scripted faults for hand-built scenarios: may edit a message in flight (as long as the
  /// result is a message the sender could have sent), and returns true to lose it.
  std::function<bool(const std::string& from, const std::string& to, caf::message&)> script;
  /// Sees every message at the moment its node sends it (as it is enqueued at the link, in the
  /// sender's handler), before any fault: what it depends on must be durable by then.
  std::function<void(const std::string& from, const std::string& to, const caf::message&)> on_send;

  bool blocked(const std::string& from, const std::string& to) const {
    return cut.count({from, to}) > 0;
  }
  /// Cuts every link between `a` and the others, both ways.
  void isolate(const std::string& a, const std::vector<std::string>& all);
  /// Cuts every link between the two groups, both ways.
  void partition(const std::vector<std::string>& left, const std::vector<std::string>& right);
  /// Removes every cut, every scripted drop and every random fault.
  void heal();

  uint64_t delivered = 0, dropped = 0, duplicated = 0, delayed = 0;
  uint64_t snapshot_chunks = 0; // InstallSnapshot messages sent (lost or not)
  uint64_t quiesce_marks = 0;   // AppendEntries marked quiesce (lost or not)

  /// Every vote granted, (voter, term) -> candidate, as it leaves the voter (lost or not):
  /// a second, different grant in one term is a violation, across restarts too.
  std::map<std::pair<std::string, uint64_t>, std::string> votes;
  std::vector<std::string> vote_violations;
};

class invariant_checker : public step_observer {
public:
  void on_step(role_kind role, const raft_state& s) override;
  void on_apply(const std::string& node_id, const pb::LogEntry& entry) override;
  void on_restore(const std::string& node_id, uint64_t index) override;

  /// A node restarts: its volatile state (commit index, applied index) starts over.
  void forget_volatile(const std::string& node_id);
  /// A node's disk was wiped: everything it held is gone.
  void forget_node(const std::string& node_id) { nodes_.erase(node_id); }

  std::vector<std::string> violations;
  uint64_t steps = 0;
  uint64_t restores = 0; // state machines restored from a snapshot (at start or installed)
  std::map<uint64_t, std::string> leaders; // term -> leader
  std::map<std::string, role_kind> roles;  // node -> its role at its last step

private:
  struct node_view {
    uint64_t term = 0;
    uint64_t commit = 0;
    uint64_t applied = 0;
    uint64_t base = 0;                            // entries through here are in a snapshot
    std::vector<std::pair<uint64_t, size_t>> log; // (term, hash of data) per index after base
    uint64_t last() const { return base + log.size(); }
    const std::pair<uint64_t, size_t>& at(uint64_t i) const { return log[i - base - 1]; }
  };
  struct committed_entry {
    bool seen = false; // seen committed by some node
    uint64_t term = 0;
    size_t hash = 0;
    uint64_t seen_in_term = 0; // smallest term of a node that saw it committed
  };
  void fail(std::string what);

  std::map<std::string, node_view> nodes_;
  std::vector<committed_entry> committed_;                  // by index (0 unused)
  std::map<uint64_t, std::pair<uint64_t, size_t>> applied_; // index -> (term, hash)
};

/// What a node was making durable when its power failed: the worst moments to crash.
enum class disk_event {
  hard_state,       // a term or a vote (an election under way)
  leader_append,    // the leader's own entries, before it counts itself toward a majority
  follower_append,  // a follower's entries, before it acknowledges them
  config_entry,     // entries holding a configuration (a membership change under way)
  snapshot_install, // a snapshot received from the leader becomes the node's state
  snapshot_chunk,   // a chunk of a snapshot being received
  snapshot_save,    // a snapshot of the node's own state machine (log compaction)
};
const char* to_string(disk_event e);

/// When a cluster crashes nodes by itself: at each disk event of a running node, the power
/// fails with the probability given for that event, while at least `min_up` other nodes are
/// running. With durable storage the power fails within the next few disk operations (in the
/// middle of the write, or just after it); with in-memory storage the write in hand is lost.
/// Either way the node stops, and the test stops and restarts it (cluster::failing()).
struct crash_plan {
  std::map<disk_event, double> probability;
  size_t min_up = 0;
};

/// Crashes of one run, as restarts found them.
struct crash_stats {
  uint64_t restarts = 0;    // restarts after a crash
  uint64_t lost_writes = 0; // ... whose disk lost writes: unsynced or refused by the power failure
  std::map<disk_event, uint64_t> timed;       // power failures timed to each disk event
  std::map<disk_event, uint64_t> disk_events; // disk events seen (durable writes of running nodes)
};

/// Result slot of a request sent from the test body.
template <class T> struct outcome {
  bool done = false;
  caf::expected<T> value{caf::error{}};
};

/// Sends the message `xs` to `target` (an actor or a typed handle) from a fresh requester
/// actor; the slot fills when it answers. With a typed handle, a response type other than the
/// declared one does not compile.
template <class Resp, class Handle, class... Ts>
std::shared_ptr<outcome<Resp>> ask_with(caf::actor_system& sys, const Handle& target,
                                        caf::timespan timeout, Ts... xs) {
  auto out = std::make_shared<outcome<Resp>>();
  sys.spawn([=](caf::event_based_actor* self) {
    self->request(target, timeout, std::move(xs)...)
        .then(
            [=](Resp& r) {
              out->done = true;
              out->value = std::move(r);
            },
            [=](caf::error& e) {
              out->done = true;
              out->value = std::move(e);
            });
  });
  return out;
}

/// Sends `req` to `target` from a fresh requester actor; the slot fills when it answers.
template <class Resp, class Req>
std::shared_ptr<outcome<Resp>> ask_actor(caf::actor_system& sys, const caf::actor& target, Req req,
                                         caf::timespan timeout = std::chrono::seconds{1}) {
  return ask_with<Resp>(sys, target, timeout, std::move(req));
}

class cluster {
public:
  /// `durable`: nodes keep their data in durable storage on a crashable disk, and a stop is a
  /// power failure (see stop()).
  cluster(caf::actor_system& sys, size_t n, uint64_t seed, std::shared_ptr<network> net,
          std::function<void(node_config&)> tweak = nullptr, bool durable = false);
  ~cluster();

  std::vector<std::string> ids;
  std::map<std::string, caf::actor> nodes; // running nodes
  std::map<std::string, std::shared_ptr<memory_storage>> disks;
  std::map<std::string, std::shared_ptr<crash_disk>> crash_disks; // when durable
  std::shared_ptr<invariant_checker> checker = std::make_shared<invariant_checker>();
  std::shared_ptr<network> net;
  /// How each node's last run ended, when it did (kill for stop(), removed_member, ...).
  std::shared_ptr<std::map<std::string, caf::error>> exits =
      std::make_shared<std::map<std::string, caf::error>>();
  /// Power failures timed to disk events (none unless set).
  crash_plan worst_moments;
  crash_stats crashes;
  /// Nodes whose power failed (at a disk event, or through power_fail()) that have not been
  /// stopped yet: the test stops them (stop()) within a few milliseconds.
  const std::set<std::string>& failing() const { return failing_; }
  /// Called by a node's storage before each durable write (on the node's storage actor).
  void on_disk_event(const std::string& id, disk_event ev);

  /// Stops a node as a crash would: its storage stays. With durable storage the power fails
  /// within the next few disk operations, and restart() finds a random crash state of the disk
  /// (everything synced, a prefix of the rest, the last write torn).
  void stop(const std::string& id);
  /// With durable storage: the power of node `id` fails within its next few disk operations,
  /// in the middle of a write when one comes (the node stops when its disk does). stop() ends
  /// it for good.
  void power_fail(const std::string& id);
  /// Starts a stopped node again from its storage.
  void restart(const std::string& id);

  /// Starts node `id` (not one of the initial members, or one whose disk was wiped) through
  /// join_cluster(), asking the running nodes; it restarts from its storage when that holds
  /// data. Returns the node (check it with joined_atom).
  caf::actor join(const std::string& id, caf::timespan timeout = std::chrono::seconds{10});
  /// Replaces the storage of stopped node `id` with an empty one (a lost disk).
  void wipe(const std::string& id);
  /// Forgets a node that stopped by itself (removed_member, or a refused join).
  void forget(const std::string& id);
  /// A change client that asks the running nodes and follows redirects to them.
  caf::actor changer(caf::timespan timeout = std::chrono::seconds{10});
  /// Options for a change client or a joining node: the running nodes, and a resolver.
  change_client_options change_options(caf::timespan timeout);

  /// Sends `req` to node `id` from a fresh requester actor; the slot fills when it answers.
  template <class Resp, class Req>
  std::shared_ptr<outcome<Resp>> ask(const std::string& id, Req req,
                                     caf::timespan timeout = std::chrono::seconds{1}) {
    return ask_actor<Resp>(sys_, nodes.at(id), std::move(req), timeout);
  }

  node_config config_for(const std::string& id);

private:
  void spawn(const std::string& id);
  std::shared_ptr<memory_storage> memory_disk(const std::string& id);
  bool initial_member(const std::string& id) const;
  void watch(const std::string& id, const caf::actor& node);
  std::vector<caf::actor> watchers_;
  void wire(const std::string& id);

  caf::actor_system& sys_;
  uint64_t seed_;
  bool durable_;
  std::mt19937_64 crash_rng_;
  std::set<std::string> failing_;        // power_fail() armed, stop() not yet called
  std::set<std::string> lost_in_memory_; // in-memory storage that threw away a write at a crash
  std::function<void(node_config&)> tweak_;
  std::vector<member> members_;
  std::map<std::pair<std::string, std::string>, caf::actor> links_;
  // A stable handle per node id that reaches whichever incarnation runs now, as an address
  // would: what joiners and change clients are given as contacts.
  std::map<std::string, caf::actor> contacts_;
};

class driver {
public:
  driver(caf::actor_system& sys, uint64_t seed, bool random_order);

  /// Runs ready actors until none is left (or `max` jobs ran). Returns the number run.
  size_t run(size_t max = 1000000);
  /// Advances virtual time by `d` in steps of `step`, running actors in between.
  void advance(std::chrono::milliseconds d, std::chrono::milliseconds step = 1ms);
  /// Advances time until `pred()` holds or `limit` passed. Returns pred().
  template <class Pred> bool run_until(Pred pred, std::chrono::milliseconds limit) {
    for (auto t = 0ms; t <= limit; t += 1ms) {
      run();
      if (pred())
        return true;
      sched.advance_time(1ms);
    }
    return pred();
  }

  caf::scheduler::test_coordinator& sched;
  std::mt19937_64 rng;
  bool random_order;
};

/// Status of every running node (advancing time until all answered).
std::map<std::string, pb::NodeStatus> statuses(cluster& c, driver& d);

/// The id of the single leader that every running node agrees on, or "" if there is none.
std::string agreed_leader(cluster& c, driver& d);

/// A put request.
pb::PutRequest put(const std::string& key, const std::string& value);
/// A linearizable get request.
pb::GetRequest get(const std::string& key, bool stale = false);

} // namespace cafraft::test

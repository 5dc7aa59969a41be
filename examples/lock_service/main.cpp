// A replicated lock service on three cafraft nodes in one CAF application (lock_table.hpp):
// locks with owners and fencing tokens, through a leader failover and a snapshot installed on a
// follower that fell behind. Built with the project (build/bin/lock-service-example) and run by
// ctest (Examples.LockServiceFailoverAndSnapshotInstall); exits 0 when every check holds.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <caf/all.hpp>

#include <cafraft/actors/client.hpp>
#include <cafraft/actors/node.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>

#include "lock.pb.h"
#include "lock_table.hpp"

using namespace std::chrono_literals;

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  failures += ok ? 0 : 1;
}

struct cluster {
  cluster(caf::actor_system& s, std::string d) : sys(s), dir(std::move(d)) {}

  caf::actor_system& sys;
  std::string dir;
  std::vector<cafraft::member> members{{"a", "a:1"}, {"b", "b:1"}, {"c", "c:1"}};
  std::map<std::string, caf::actor> nodes;
  std::map<std::string, std::shared_ptr<std::atomic<uint64_t>>> restored;

  cafraft::node_config config(const std::string& id) {
    cafraft::node_config nc;
    nc.id = id;
    nc.members = members;
    nc.data_dir = dir + "/" + id;
    nc.election_timeout_min = 150ms;
    nc.election_timeout_max = 300ms;
    nc.heartbeat_interval = 50ms;
    nc.snapshot_entries = 20; // snapshots often: the log is compacted behind the leader
    auto seen = restored[id] = std::make_shared<std::atomic<uint64_t>>(0);
    nc.make_state_machine = [seen] { return std::make_unique<lockservice::lock_table>(seen); };
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
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  void stop(const std::string& id) {
    caf::scoped_actor self{sys};
    self->monitor(nodes[id]);
    caf::anon_send_exit(nodes[id], caf::exit_reason::kill); // as a crash: its disk stays
    self->receive([](caf::down_msg&) {});
    nodes.erase(id);
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
      std::this_thread::sleep_for(50ms);
    }
    return {};
  }
};

lockservice::Result acquire(cafraft::client& c, const std::string& lock, const std::string& owner) {
  lockservice::Command cmd;
  cmd.mutable_acquire()->set_lock(lock);
  cmd.mutable_acquire()->set_owner(owner);
  auto r = c.propose_as<lockservice::Result>(cmd);
  return r ? *r : lockservice::Result{};
}

bool release(cafraft::client& c, const std::string& lock, const std::string& owner,
             uint64_t token) {
  lockservice::Command cmd;
  cmd.mutable_release()->set_lock(lock);
  cmd.mutable_release()->set_owner(owner);
  cmd.mutable_release()->set_token(token);
  auto r = c.propose_as<lockservice::Result>(cmd);
  return r && r->ok();
}

lockservice::Holder holder(cafraft::client& c, const std::string& lock, bool stale = false,
                           const std::string& node = {}) {
  lockservice::Query q;
  q.set_lock(lock);
  auto h = c.query_as<lockservice::Holder>(q, stale, node);
  return h ? *h : lockservice::Holder{};
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  cafraft::register_types(cfg);
  caf::actor_system sys{cfg};
  auto dir = std::filesystem::temp_directory_path() / "cafraft-lock-example";
  std::filesystem::remove_all(dir);
  cluster cl{sys, dir.string()};
  for (auto& m : cl.members)
    if (!cl.start(m.id))
      return 1;

  // alice takes the lock; bob is told who holds it.
  auto c = cl.client();
  auto grant = acquire(*c, "db", "alice");
  check(grant.ok() && grant.token() > 0, "alice acquires db with a fencing token");
  auto refused = acquire(*c, "db", "bob");
  check(!refused.ok() && refused.holder() == "alice", "bob is refused: alice holds db");

  // The leader crashes; a new one is elected and the lock is still alice's.
  auto first = cl.leader();
  cl.stop(first);
  auto second = cl.leader();
  check(!second.empty() && second != first, "a new leader is elected after the crash");
  c = cl.client();
  auto h = holder(*c, "db"); // linearizable: through the new leader's ReadIndex
  check(h.held() && h.owner() == "alice" && h.token() == grant.token(),
        "the new leader knows alice holds db, with the same token");
  check(release(*c, "db", "alice", grant.token()), "alice releases db");
  auto next = acquire(*c, "db", "bob");
  check(next.ok() && next.token() > grant.token(), "bob acquires db with a larger token");
  check(!release(*c, "db", "alice", grant.token()), "alice's old token releases nothing");

  // The crashed node comes back from its disk. Then a follower stops while many locks change
  // hands: the leader snapshots and compacts its log past the follower's.
  check(cl.start(first), "the crashed node restarts from its data directory");
  auto leader = cl.leader();
  std::string lagging;
  for (auto& m : cl.members)
    if (m.id != leader)
      lagging = m.id;
  auto lagging_status = c->status(lagging);
  uint64_t behind = lagging_status ? lagging_status->applied_index() : 0;
  cl.stop(lagging);
  c = cl.client();
  for (int i = 0; i < 60; ++i) {
    auto lock = "queue-" + std::to_string(i % 10);
    auto g = acquire(*c, lock, "worker-" + std::to_string(i));
    if (g.ok() && i % 3 != 0)
      release(*c, lock, "worker-" + std::to_string(i), g.token());
  }
  auto target = c->status(leader);
  check(cl.start(lagging), "the lagging follower restarts");
  c = cl.client();
  bool caught_up = false;
  for (int i = 0; i < 200 && !caught_up; ++i) {
    auto st = c->status(lagging);
    caught_up = st && target && st->applied_index() >= target->applied_index();
    std::this_thread::sleep_for(20ms);
  }
  check(caught_up, "the lagging follower caught up");
  check(cl.restored[lagging]->load() > behind,
        "it caught up from the leader's snapshot (a restore past where it stopped)");
  bool same = true;
  for (int i = 0; i < 10; ++i) {
    auto lock = "queue-" + std::to_string(i);
    auto at_leader = holder(*c, lock);
    auto at_follower = holder(*c, lock, true, lagging);
    same = same && at_leader.SerializeAsString() == at_follower.SerializeAsString();
  }
  check(same, "its lock table is the leader's");

  for (auto& [id, n] : cl.nodes)
    caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
  std::filesystem::remove_all(dir);
  std::printf("%s\n", failures == 0 ? "all checks passed" : "some checks failed");
  return failures == 0 ? 0 : 1;
}

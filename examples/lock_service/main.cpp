// A replicated lock service on three cafraft nodes in one CAF application (lock_table.hpp):
// locks with owners and fencing tokens, through a leader failover and a snapshot installed on a
// follower that fell behind. Built with the project (build/bin/lock-service-example) and run by
// ctest (Examples.LockServiceFailoverAndSnapshotInstall); exits 0 when every check holds.
#include <cstdio>
#include <filesystem>

#include <caf/all.hpp>

#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>

#include "../example_cluster.hpp"
#include "lock.pb.h"
#include "lock_table.hpp"

namespace {

using example::check;

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
  example::cluster cl{sys, dir.string(), [](std::shared_ptr<std::atomic<uint64_t>> restored) {
                        return std::make_unique<lockservice::lock_table>(std::move(restored));
                      }};
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
  cl.crash(first);
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
  auto lagging = cl.other_than(leader);
  auto lagging_status = c->status(lagging);
  uint64_t behind = lagging_status ? lagging_status->applied_index() : 0;
  cl.crash(lagging);
  c = cl.client();
  for (int i = 0; i < 60; ++i) {
    auto lock = "queue-" + std::to_string(i % 10);
    auto g = acquire(*c, lock, "worker-" + std::to_string(i));
    if (g.ok() && i % 3 != 0)
      release(*c, lock, "worker-" + std::to_string(i), g.token());
  }
  check(cl.start(lagging), "the lagging follower restarts");
  c = cl.client();
  check(cl.caught_up(lagging, leader), "the lagging follower caught up");
  check(example::eventually([&] { return cl.restored[lagging]->load() > behind; }),
        "it caught up from the leader's snapshot (a restore past where it stopped)");
  bool same = true;
  for (int i = 0; i < 10; ++i) {
    auto lock = "queue-" + std::to_string(i);
    auto at_leader = holder(*c, lock);
    auto at_follower = holder(*c, lock, true, lagging);
    same = same && at_leader.SerializeAsString() == at_follower.SerializeAsString();
  }
  check(same, "its lock table is the leader's");

  cl.stop_all();
  std::filesystem::remove_all(dir);
  std::printf("%s\n", example::failures == 0 ? "all checks passed" : "some checks failed");
  return example::failures == 0 ? 0 : 1;
}

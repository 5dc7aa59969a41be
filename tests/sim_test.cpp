// The simulated cluster: 3 and 5 nodes under a seeded random schedule and a network that
// loses, delays, reorders and duplicates messages, partitions nodes and crashes and restarts
// them (from their in-memory storage, or from durable storage on a crashable disk after a
// power failure), with clients writing
// all along. Raft's safety invariants are checked after every step (harness.hpp); once the
// faults heal, a leader must exist and every node must apply the same log.
//
// CAFRAFT_SEEDS=N runs N seeds per size (default 200). A failing seed prints itself;
// CAFRAFT_SEED=S replays exactly that seed (CAFRAFT_TEST_LOG=info shows the nodes' logs).
#include <cstdlib>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "harness.hpp"

namespace cafraft::test {
namespace {

struct sim_result {
  std::vector<std::string> failures;
  uint64_t steps = 0;
  uint64_t committed_writes = 0;
  uint64_t restores = 0;
  uint64_t chunks = 0;
  uint64_t unsynced_restarts = 0;
};

std::vector<std::string> pick(std::mt19937_64& rng, const std::vector<std::string>& ids, size_t n) {
  auto copy = ids;
  std::shuffle(copy.begin(), copy.end(), rng);
  copy.resize(n);
  return copy;
}

// Every running node of `ids` holds what the leader holds for the keys the writers use,
// whether it applied the entries or restored them from a snapshot.
void check_same_data(cluster& c, driver& d, const std::string& leader,
                     const std::vector<std::string>& ids, sim_result& res) {
  for (int k = 0; k < 5; ++k) {
    auto name = "k" + std::to_string(k);
    std::map<std::string, std::shared_ptr<outcome<pb::GetResponse>>> reads;
    for (auto& id : ids)
      if (c.nodes.count(id))
        reads[id] = c.ask<pb::GetResponse>(id, get(name, true));
    d.run_until(
        [&] {
          for (auto& [id, r] : reads)
            if (!r->done)
              return false;
          return true;
        },
        500ms);
    auto& want = reads.at(leader);
    for (auto& [id, r] : reads)
      if (!r->done || !r->value || !want->value || r->value->found() != want->value->found() ||
          r->value->value() != want->value->value())
        res.failures.push_back(id + " disagrees with leader " + leader + " on " + name);
  }
}

sim_result run_seed(size_t n, uint64_t seed, bool durable = false) {
  sim_result res;
  test_config cfg;
  caf::actor_system sys{cfg};
  auto net = std::make_shared<network>(seed * 7919 + n);
  driver d{sys, seed, true};
  std::mt19937_64 rng{seed * 104729 + n};
  std::uniform_real_distribution<double> coin{0.0, 1.0};
  std::vector<std::shared_ptr<outcome<pb::WriteResponse>>> writes;
  {
    // Snapshots every few entries, sent in small chunks: lagging and restarted nodes catch up
    // from snapshots while messages are lost, duplicated and reordered.
    auto snapshots = [](node_config& nc) {
      nc.snapshot_entries = 12;
      nc.snapshot_chunk_bytes = 32;
    };
    cluster c{sys, n, seed, net, snapshots, durable};
    // Phase 1: faults for 4 s of virtual time.
    int key = 0;
    std::map<std::string, std::chrono::milliseconds> failing; // power failed, stop due at
    for (auto t = 0ms; t < 4000ms;) {
      auto r = coin(rng);
      if (r < 0.02) {
        net->heal();
      } else if (r < 0.04) {
        net->heal();
        auto minority = pick(rng, c.ids, (n - 1) / 2);
        std::vector<std::string> rest;
        for (auto& id : c.ids)
          if (std::find(minority.begin(), minority.end(), id) == minority.end())
            rest.push_back(id);
        net->partition(minority, rest);
      } else if (r < 0.05) {
        net->isolate(pick(rng, c.ids, 1).front(), c.ids);
      } else if (r < 0.06) {
        net->loss = coin(rng) * 0.3;
        net->duplicate = coin(rng) * 0.2;
        net->delay = coin(rng) * 0.3;
      } else if (r < 0.065) {
        // Crash a node (never a majority), or bring a crashed one back from its storage. On
        // durable storage the power fails during the node's next disk operations, often in the
        // middle of a write, and the node is gone for good a few milliseconds later.
        std::vector<std::string> up, down, stopped;
        for (auto& id : c.ids) {
          bool running = c.nodes.count(id) && failing.count(id) == 0;
          (running ? up : down).push_back(id);
          if (!c.nodes.count(id))
            stopped.push_back(id);
        }
        if (!stopped.empty() && coin(rng) < 0.6) {
          c.restart(pick(rng, stopped, 1).front());
        } else if (down.size() < (n - 1) / 2) {
          auto victim = pick(rng, up, 1).front();
          if (durable) {
            c.power_fail(victim);
            failing[victim] = t + std::chrono::milliseconds{rng() % 20};
          } else {
            c.stop(victim);
          }
        }
      } else if (r < 0.30) {
        std::vector<std::string> up;
        for (auto& [id, ignored] : c.nodes)
          up.push_back(id);
        auto target = pick(rng, up, 1).front();
        writes.push_back(c.ask<pb::WriteResponse>(
            target, put("k" + std::to_string(key % 5), std::to_string(key)), 500ms));
        ++key;
      }
      auto step = std::chrono::milliseconds{1 + static_cast<int64_t>(rng() % 10)};
      d.advance(step, step);
      t += step;
      for (auto i = failing.begin(); i != failing.end();) {
        if (i->second <= t) {
          c.stop(i->first);
          i = failing.erase(i);
        } else {
          ++i;
        }
      }
    }
    for (auto& [id, ignored] : failing)
      c.stop(id);
    // Phase 2: heal, restart every crashed node, and let the cluster settle.
    net->heal();
    for (auto& id : c.ids)
      if (c.nodes.count(id) == 0)
        c.restart(id);
    d.advance(3000ms, 5ms);
    auto leader = agreed_leader(c, d);
    if (leader.empty()) {
      res.failures.push_back("no single leader that every node follows after healing");
    } else {
      auto last = c.ask<pb::WriteResponse>(leader, put("final", "1"), 2s);
      d.run_until([&] { return last->done; }, 2100ms);
      if (!last->done || !last->value) {
        res.failures.push_back("the final write failed: " +
                               (last->done ? render(last->value.error()) : "no answer"));
      } else {
        auto index = last->value->index();
        bool caught_up = d.run_until(
            [&] {
              for (auto& [id, s] : statuses(c, d))
                if (s.applied_index() < index)
                  return false;
              return true;
            },
            2000ms);
        if (!caught_up)
          res.failures.push_back("not every node applied the final write at index " +
                                 std::to_string(index));
        check_same_data(c, d, leader, c.ids, res);
      }
    }
    for (auto& v : c.checker->violations)
      res.failures.push_back(v);
    for (auto& v : net->vote_violations)
      res.failures.push_back(v);
    res.steps = c.checker->steps;
    res.restores = c.checker->restores;
    res.chunks = net->snapshot_chunks;
    res.unsynced_restarts = c.unsynced_restarts;
  }
  for (auto& w : writes)
    res.committed_writes += w->done && w->value;
  return res;
}

uint64_t env_or(const char* name, uint64_t fallback) {
  auto v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

void run_seeds(size_t n, bool durable = false) {
  auto only = env_or("CAFRAFT_SEED", 0);
  auto count = env_or("CAFRAFT_SEEDS", 200);
  uint64_t first = only ? only : 1;
  uint64_t last = only ? only : count;
  uint64_t steps = 0, writes = 0, failed = 0, restores = 0, chunks = 0, unsynced = 0;
  for (auto seed = first; seed <= last; ++seed) {
    auto res = run_seed(n, seed, durable);
    steps += res.steps;
    writes += res.committed_writes;
    restores += res.restores;
    chunks += res.chunks;
    unsynced += res.unsynced_restarts;
    if (!res.failures.empty()) {
      ++failed;
      std::ostringstream out;
      out << n << " nodes, seed " << seed << " failed (replay: CAFRAFT_SEED=" << seed
          << " --gtest_filter=*Sim" << n << (durable ? "*Durable" : "*Stay") << "*):";
      for (auto& f : res.failures)
        out << "\n  " << f;
      ADD_FAILURE() << out.str();
      if (failed >= 5)
        break;
    }
  }
  auto u = [](uint64_t x) { return static_cast<unsigned long long>(x); };
  std::printf("%zu nodes%s: %llu seeds, %llu checked steps, %llu acknowledged writes, %llu "
              "snapshot chunks sent, %llu restores from snapshots, %llu restarts after losing "
              "unsynced writes\n",
              n, durable ? " on crashable disks" : "", u(last - first + 1), u(steps), u(writes),
              u(chunks), u(restores), u(unsynced));
  EXPECT_GT(writes, 0u) << "no write succeeded in any seed: the simulation tested nothing";
  EXPECT_GT(restores, 0u) << "no snapshot was ever restored: snapshot installs went untested";
  if (durable && !only) {
    EXPECT_GT(unsynced, 0u) << "no crash ever lost an unsynced write: mid-write crashes untested";
  }
}

TEST(SimulatedCluster, Sim3NodesStaySafeAndRecover) {
  run_seeds(3);
}

TEST(SimulatedCluster, Sim5NodesStaySafeAndRecover) {
  run_seeds(5);
}

// The same, with durable storage on crashable disks: every crash is a power failure during the
// node's last disk operations, and the restart recovers from a random crash state of its disk.
TEST(SimulatedCluster, Sim3NodesDurableSurvivePowerFailures) {
  run_seeds(3, true);
}

TEST(SimulatedCluster, Sim5NodesDurableSurvivePowerFailures) {
  run_seeds(5, true);
}

// -- membership churn -------------------------------------------------------------------------

// Drops nodes that stopped by themselves (removed, or a refused join) from the cluster's view.
void prune_stopped(cluster& c, driver& d) {
  auto st = statuses(c, d);
  std::vector<std::string> gone;
  for (auto& [id, n] : c.nodes)
    if (st.count(id) == 0)
      gone.push_back(id);
  for (auto& id : gone)
    c.forget(id);
}

// Three initial nodes; while the network loses, delays and partitions, nodes crash and come
// back, nodes join (n4..n6, some again after they were removed, with wiped disks) and members
// leave (the leader too). Afterwards: one leader, every running member applies a final write,
// and all hold the same data; the invariants held at every step, across configurations.
sim_result run_churn_seed(uint64_t seed, bool durable = false) {
  sim_result res;
  test_config cfg;
  caf::actor_system sys{cfg};
  auto net = std::make_shared<network>(seed * 31 + 5);
  driver d{sys, seed, true};
  std::mt19937_64 rng{seed * 15485863};
  std::uniform_real_distribution<double> coin{0.0, 1.0};
  std::vector<std::shared_ptr<outcome<pb::WriteResponse>>> writes;
  std::vector<std::pair<std::string, std::shared_ptr<outcome<pb::MembershipResponse>>>> changes;
  std::vector<caf::actor> clients;
  {
    auto tweak = [](node_config& nc) {
      nc.snapshot_entries = 12;
      nc.snapshot_chunk_bytes = 32;
    };
    cluster c{sys, 3, seed, net, tweak, durable};
    const std::vector<std::string> spares = {"n4", "n5", "n6"};
    std::set<std::string> joined;
    int key = 0;
    for (auto t = 0ms; t < 4000ms;) {
      // Nodes that stopped because they learned of their committed removal may come back as
      // new nodes (wiped disk); nothing else is ever wiped (that would lose a voter for good).
      std::set<std::string> removed;
      for (auto& [id, why] : *c.exits)
        if (why == make_error(errc::removed_member)) {
          removed.insert(id);
          c.forget(id);
        }
      auto r = coin(rng);
      std::vector<std::string> up;
      for (auto& [id, ignored] : c.nodes)
        up.push_back(id);
      if (r < 0.02) {
        net->heal();
      } else if (r < 0.03) {
        net->heal();
        net->isolate(pick(rng, c.ids, 1).front(), c.ids);
      } else if (r < 0.04) {
        net->loss = coin(rng) * 0.2;
        net->delay = coin(rng) * 0.3;
        net->duplicate = coin(rng) * 0.1;
      } else if (r < 0.045) {
        std::vector<std::string> stopped;
        for (auto& id : c.ids)
          if (!c.nodes.count(id))
            stopped.push_back(id);
        if (!stopped.empty() && coin(rng) < 0.5) {
          try {
            c.restart(pick(rng, stopped, 1).front());
          } catch (const std::exception&) {
            // removed while it was down: its data directory refuses to start
          }
        } else if (up.size() > 2) {
          c.stop(pick(rng, up, 1).front());
        }
      } else if (r < 0.055) {
        auto id = pick(rng, spares, 1).front();
        if (!c.nodes.count(id) && (!joined.count(id) || removed.count(id))) {
          // A new node, or a removed one back with a wiped disk: it joins as a new node. (A
          // member's disk is never wiped here: that is losing a voter for good.)
          c.wipe(id);
          c.join(id, 3s);
          joined.insert(id);
        }
      } else if (r < 0.062 && !up.empty()) {
        // A member leaves, asked through any node (the leader included).
        auto victim = pick(rng, c.ids, 1).front();
        pb::LeaveRequest req;
        req.set_id(victim);
        clients.push_back(c.changer(2s));
        changes.emplace_back(victim,
                             ask_actor<pb::MembershipResponse>(sys, clients.back(), req, 3s));
      } else if (r < 0.30 && !up.empty()) {
        writes.push_back(c.ask<pb::WriteResponse>(
            pick(rng, up, 1).front(), put("k" + std::to_string(key % 5), std::to_string(key)),
            500ms));
        ++key;
      }
      auto step = std::chrono::milliseconds{1 + static_cast<int64_t>(rng() % 10)};
      d.advance(step, step);
      t += step;
    }
    // Heal, bring back every stopped node that can start, and let the cluster settle.
    net->heal();
    d.advance(1000ms, 5ms);
    for (auto& id : c.ids)
      if (c.nodes.count(id) == 0) {
        try {
          c.restart(id);
        } catch (const std::exception&) {
        }
      }
    d.advance(4000ms, 5ms);
    prune_stopped(c, d);
    auto st = statuses(c, d);
    std::string leader;
    for (auto& [id, s] : st)
      if (s.role() == "leader" && (leader.empty() || s.term() > st[leader].term()))
        leader = id;
    if (leader.empty()) {
      res.failures.push_back("no leader after healing");
    } else {
      std::set<std::string> members;
      for (auto& m : st[leader].members()) {
        if (!members.insert(m.id()).second)
          res.failures.push_back(m.id() + " is in the configuration twice");
        if (!m.learner() && c.nodes.count(m.id()) == 0)
          res.failures.push_back("voter " + m.id() + " is not running after healing");
      }
      auto last = c.ask<pb::WriteResponse>(leader, put("final", "1"), 2s);
      d.run_until([&] { return last->done; }, 2100ms);
      if (!last->done || !last->value) {
        res.failures.push_back("the final write failed: " +
                               (last->done ? render(last->value.error()) : "no answer"));
      } else {
        auto index = last->value->index();
        bool caught_up = d.run_until(
            [&] {
              auto now = statuses(c, d);
              for (auto& id : members)
                if (now.count(id) && now[id].applied_index() < index)
                  return false;
              return true;
            },
            3000ms);
        if (!caught_up)
          res.failures.push_back("a running member did not apply the final write");
        check_same_data(c, d, leader, {members.begin(), members.end()}, res);
      }
    }
    for (auto& v : c.checker->violations)
      res.failures.push_back(v);
    for (auto& v : net->vote_violations)
      res.failures.push_back(v);
    res.steps = c.checker->steps;
    res.restores = c.checker->restores;
    for (auto& [victim, ch] : changes)
      res.chunks += ch->done && ch->value; // here: leaves that were confirmed
    for (auto& cl : clients)
      caf::anon_send_exit(cl, caf::exit_reason::kill);
  }
  for (auto& w : writes)
    res.committed_writes += w->done && w->value;
  return res;
}

void run_churn_seeds(bool durable) {
  auto only = env_or("CAFRAFT_SEED", 0);
  auto count = env_or("CAFRAFT_SEEDS", 200) / 2;
  uint64_t first = only ? only : 1;
  uint64_t last = only ? only : std::max<uint64_t>(count, 1);
  uint64_t writes = 0, leaves = 0, steps = 0, failed = 0;
  for (auto seed = first; seed <= last; ++seed) {
    auto res = run_churn_seed(seed, durable);
    writes += res.committed_writes;
    leaves += res.chunks;
    steps += res.steps;
    if (!res.failures.empty()) {
      ++failed;
      std::ostringstream out;
      out << "churn seed " << seed << " failed (replay: CAFRAFT_SEED=" << seed
          << " --gtest_filter=*Churn" << (durable ? "OnCrashableDisks" : "UnderPartitions")
          << "*):";
      for (auto& f : res.failures)
        out << "\n  " << f;
      ADD_FAILURE() << out.str();
      if (failed >= 5)
        break;
    }
  }
  std::printf("membership churn%s: %llu seeds, %llu checked steps, %llu acknowledged writes, "
              "%llu confirmed leaves\n",
              durable ? " on crashable disks" : "",
              static_cast<unsigned long long>(last - first + 1),
              static_cast<unsigned long long>(steps), static_cast<unsigned long long>(writes),
              static_cast<unsigned long long>(leaves));
  EXPECT_GT(writes, 0u);
  EXPECT_GT(leaves, 0u) << "no leave was ever confirmed: removals went untested";
}

TEST(SimulatedCluster, MembershipChurnUnderPartitionsStaysSafe) {
  run_churn_seeds(false);
}

// The same on durable storage over crashable disks: a stop is a power failure, and a restart
// recovers a random crash state of the disk (joined nodes through the safe join).
TEST(SimulatedCluster, MembershipChurnOnCrashableDisksStaysSafe) {
  run_churn_seeds(true);
}

TEST(SimulatedCluster, SameSeedReplaysTheSameRun) {
  auto a = run_seed(3, 42);
  auto b = run_seed(3, 42);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.committed_writes, b.committed_writes);
  EXPECT_EQ(a.failures, b.failures);
}

} // namespace
} // namespace cafraft::test

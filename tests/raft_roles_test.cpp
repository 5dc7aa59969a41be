// The role actors against the rules of Raft that only show between nodes, under CAF's test
// scheduler in virtual time: stale terms (§5.1), pre-vote with its leader lease (thesis §9.6),
// and the read path (ReadIndex, thesis §6.4): a new leader serves no read before it knows what
// its predecessors committed, and the state machine answers a read only from a state that
// includes the read index.
#include <gtest/gtest.h>

#include "cluster_test.hpp"
#include <cafraft/actors/state_machine.hpp>
#include <cafraft/runtime/state_machine.hpp>

namespace cafraft::test {
namespace {

class RoleTest : public cluster_test {
protected:
  // A node of `ids` that considers itself leader, once there is one.
  std::string leader_among(cluster& c, const std::vector<std::string>& ids,
                           std::chrono::milliseconds limit = 3000ms) {
    std::string found;
    d.run_until(
        [&] {
          auto st = statuses(c, d);
          for (auto& id : ids)
            if (st.count(id) && st[id].role() == "leader")
              found = id;
          return !found.empty();
        },
        limit);
    return found;
  }

  static std::vector<std::string> others(const cluster& c, const std::string& id) {
    std::vector<std::string> out;
    for (auto& x : c.ids)
      if (x != id)
        out.push_back(x);
    return out;
  }

  static void expect_safe(const cluster& c) {
    EXPECT_GT(c.checker->steps, 0u) << "the invariant checker saw no step";
    for (auto& v : c.checker->violations)
      ADD_FAILURE() << v;
    for (auto& v : c.net->vote_violations)
      ADD_FAILURE() << v;
  }
};

// §5.1: a leader cut off by a partition keeps sending in its old term (check-quorum is off, so
// it does not know it was deposed). When its messages reach the others again, they refuse
// them: the entries the new leader committed stay, and the old leader's write is not taken.
TEST_F(RoleTest, ADeposedLeaderThatComesBackCannotOverwriteCommittedEntries) {
  cluster c{sys, 3, 1, nullptr, [](node_config& nc) { nc.check_quorum = false; }};
  auto old = wait_leader(c);
  ASSERT_FALSE(old.empty());
  ASSERT_TRUE(call<pb::WriteResponse>(c, old, put("a", "1")));
  c.net->isolate(old, c.ids);
  auto lost = c.ask<pb::WriteResponse>(old, put("a", "lost"), 10s);
  auto rest = others(c, old);
  auto fresh = leader_among(c, rest);
  ASSERT_FALSE(fresh.empty());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(c, fresh, put("b", std::to_string(i))));
  d.advance(200ms); // the followers learn the commit index
  auto before = statuses(c, d);
  ASSERT_EQ(before[old].role(), "leader") << "the old leader should still think it leads";
  // The old leader's messages get through again; the answers do not (yet).
  for (auto& id : rest)
    c.net->cut.erase({old, id});
  d.advance(500ms);
  auto during = statuses(c, d);
  for (auto& id : rest) {
    EXPECT_EQ(during[id].term(), before[id].term()) << id;
    EXPECT_EQ(during[id].last_log_index(), before[id].last_log_index())
        << id << " took entries from the deposed leader";
  }
  c.net->heal();
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  auto r = call<pb::GetResponse>(c, leader, get("a"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value(), "1");
  auto b = call<pb::GetResponse>(c, leader, get("b"));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->value(), "2");
  EXPECT_FALSE(lost->done && lost->value) << "the deposed leader's write was acknowledged";
  expect_safe(c);
}

// §5.1: "If a server receives a request or response with a higher term, it updates its term
// and converts to follower." Without pre-vote, a follower cut off for a while comes back in a
// higher term; its vote requests are lost, so the leader hears of that term only from the
// follower's answers to its AppendEntries. It steps down at once.
TEST_F(RoleTest, ALeaderThatHearsOfAHigherTermInAnAnswerStepsDown) {
  cluster c{sys, 3, 1, nullptr, [](node_config& nc) { nc.pre_vote = false; }};
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  auto term = statuses(c, d)[leader].term();
  std::string away = leader == "n3" ? "n2" : "n3";
  c.net->isolate(away, c.ids);
  d.advance(1500ms);
  auto higher = statuses(c, d)[away].term();
  ASSERT_GT(higher, term) << "the cut-off node should have campaigned";
  c.net->heal();
  c.net->script = [away](const std::string& from, const std::string&, caf::message& m) {
    return from == away && m.match_elements<pb::RequestVote>();
  };
  bool stepped_down = d.run_until(
      [&] {
        auto s = statuses(c, d)[leader];
        return s.role() != "leader" && s.term() >= higher;
      },
      300ms);
  EXPECT_TRUE(stepped_down) << leader << " kept leading term " << term << " after " << away
                            << " answered in term " << higher;
  c.net->heal();
  auto next = wait_leader(c);
  ASSERT_FALSE(next.empty());
  EXPECT_GE(statuses(c, d)[next].term(), higher);
  EXPECT_TRUE(call<pb::WriteResponse>(c, next, put("after", "1")));
  expect_safe(c);
}

// Thesis §9.6: a node that no longer hears the leader (here: the leader's messages to it are
// lost, its own get through) asks for pre-votes. The other follower still hears the leader and
// refuses, so the node never raises its term, and the healthy leader keeps leading.
TEST_F(RoleTest, ANodeThatCannotHearTheLeaderDoesNotDeposeIt) {
  cluster c{sys, 3, 1, nullptr};
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  auto term = statuses(c, d)[leader].term();
  std::string deaf = leader == "n3" ? "n2" : "n3";
  c.net->cut.emplace(leader, deaf);
  d.advance(3000ms); // ten election timeouts and more
  auto st = statuses(c, d);
  EXPECT_EQ(st[leader].role(), "leader");
  EXPECT_EQ(st[leader].term(), term) << "the leader was deposed by a node that could not hear it";
  EXPECT_EQ(st[deaf].term(), term) << "pre-votes failed, the term stayed";
  c.net->heal();
  d.advance(500ms);
  EXPECT_EQ(agreed_leader(c, d), leader);
  EXPECT_TRUE(call<pb::WriteResponse>(c, leader, put("after", "1")));
  expect_safe(c);
}

// Thesis §6.4: a new leader's commit index may lag what its predecessor committed and
// acknowledged. It serves a linearizable read only once an entry of its own term is committed;
// before, even a read confirmed by a majority could miss an acknowledged write.
TEST_F(RoleTest, ANewLeaderServesNoReadBeforeItKnowsWhatItsPredecessorCommitted) {
  cluster c{sys, 3, 1, nullptr};
  auto first = wait_leader(c);
  ASSERT_FALSE(first.empty());
  ASSERT_TRUE(call<pb::WriteResponse>(c, first, put("x", "1")));
  d.advance(200ms);
  auto x2 = statuses(c, d)[first].last_log_index() + 1;
  // The followers store x=2 and acknowledge it, but never hear that it was committed.
  c.net->script = [x2](const std::string&, const std::string&, caf::message& m) {
    return m.match_elements<pb::AppendEntries>() &&
           m.get_as<pb::AppendEntries>(0).leader_commit() >= x2;
  };
  auto w = call<pb::WriteResponse>(c, first, put("x", "2"));
  ASSERT_TRUE(w);
  ASSERT_EQ(w->index(), x2);
  c.stop(first);
  // The next leader's own entries (its no-op first) are cut from its messages on the way: it
  // cannot commit anything yet, while its followers still answer every heartbeat.
  c.net->script = [x2](const std::string&, const std::string&, caf::message& m) {
    if (m.match_elements<pb::AppendEntries>()) {
      auto& entries = *m.get_mutable_as<pb::AppendEntries>(0).mutable_entries();
      while (!entries.empty() && entries.rbegin()->index() > x2)
        entries.RemoveLast();
    }
    return false;
  };
  auto next = leader_among(c, others(c, first));
  ASSERT_FALSE(next.empty());
  ASSERT_LT(statuses(c, d)[next].commit_index(), x2) << "the scenario needs a lagging leader";
  auto read = c.ask<pb::GetResponse>(next, get("x"), 5s);
  d.advance(300ms);
  if (read->done) {
    ASSERT_TRUE(read->value) << render(read->value.error());
    EXPECT_EQ(read->value->value(), "2") << "a read missed the write acknowledged before it";
  }
  c.net->script = nullptr;
  d.run_until([&] { return read->done; }, 1000ms);
  ASSERT_TRUE(read->done);
  ASSERT_TRUE(read->value) << render(read->value.error());
  EXPECT_EQ(read->value->value(), "2");
  expect_safe(c);
}

// The state machine actor answers a query for read index i only from a state that has applied
// i: a read that overtakes the entries it must see waits for them.
TEST(StateMachineActor, AReadWaitsUntilTheStateMachineAppliedItsReadIndex) {
  test_config cfg;
  caf::actor_system sys{cfg};
  driver d{sys, 1, false};
  auto nc = std::make_shared<node_config>();
  nc->id = "n1";
  caf::actor sm;
  auto parent = sys.spawn([&](caf::event_based_actor* self) -> caf::behavior {
    sm = spawn_state_machine(self, nc, caf::actor{}, std::make_unique<kv_store>(), std::nullopt,
                             nullptr);
    return {[](int) {}};
  });
  d.run();
  ASSERT_TRUE(sm);
  struct answer {
    bool done = false;
    pb::GetResponse resp;
    uint64_t applied = 0;
  };
  auto a = std::make_shared<answer>();
  pb::KvQuery q;
  q.set_key("x");
  sys.spawn([sm, a, query = q.SerializeAsString()](caf::event_based_actor* self) {
    self->request(sm, caf::infinite, query_atom::value, uint64_t{2}, query, true)
        .then([a](pb::GetResponse& r) {
          a->done = true;
          a->applied = r.applied_index();
          a->resp = std::move(r);
        });
  });
  d.run();
  EXPECT_FALSE(a->done) << "answered a read at index 2 from a state that applied " << a->applied;
  std::vector<pb::LogEntry> entries;
  for (uint64_t i = 1; i <= 2; ++i) {
    pb::KvCommand cmd;
    *cmd.mutable_put() = put("x", std::to_string(i));
    pb::LogEntry e;
    e.set_index(i);
    e.set_term(1);
    e.set_type(pb::ENTRY_COMMAND);
    e.set_data(cmd.SerializeAsString());
    entries.push_back(e);
  }
  sys.spawn([sm, entries](caf::event_based_actor* self) {
    self->request(sm, caf::infinite, apply_atom::value, entries)
        .then([](const std::vector<std::string>&) {});
  });
  d.run();
  ASSERT_TRUE(a->done);
  EXPECT_GE(a->applied, 2u);
  EXPECT_TRUE(a->resp.found());
  EXPECT_EQ(a->resp.value(), "2");
  caf::anon_send_exit(parent, caf::exit_reason::kill);
  d.run();
}

} // namespace
} // namespace cafraft::test

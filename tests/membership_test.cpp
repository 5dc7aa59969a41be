// Membership and leadership under CAF's test scheduler (docs/membership.md): joins and leaves
// through the change_request actors, the safe-join decision table, removal of the leader,
// changes during partitions, leader lookup, events, transfer, step down and campaign policy.
#include <functional>
#include <map>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "harness.hpp"

namespace cafraft::test {
namespace {

pb::JoinRequest join_req(const std::string& id, uint64_t incarnation = 7) {
  pb::JoinRequest r;
  r.set_id(id);
  r.set_address("sim/" + id);
  r.set_incarnation(incarnation);
  return r;
}

pb::LeaveRequest leave_req(const std::string& id) {
  pb::LeaveRequest r;
  r.set_id(id);
  return r;
}

bool is(const caf::error& e, errc code) {
  return e && e.category() == error_category && e.code() == static_cast<uint8_t>(code);
}

// Records how an actor ended.
struct exit_watch {
  bool down = false;
  caf::error reason;
};

// `keep` holds the watcher: an actor nobody references ends (unreachable) before the news.
std::shared_ptr<exit_watch> watch_exit(caf::actor_system& sys, const caf::actor& who,
                                       std::vector<caf::actor>& keep) {
  auto w = std::make_shared<exit_watch>();
  keep.push_back(sys.spawn([w, who](caf::event_based_actor* self) -> caf::behavior {
    self->monitor(who);
    self->set_down_handler([w](caf::down_msg& dm) {
      w->down = true;
      w->reason = dm.reason;
    });
    return {[](int) {}};
  }));
  return w;
}

// Collects the leadership events a node reports (and its membership events, when asked).
std::shared_ptr<std::vector<pb::LeadershipEvent>>
subscribe(caf::actor_system& sys, const caf::actor& node, bool membership = false) {
  auto events = std::make_shared<std::vector<pb::LeadershipEvent>>();
  auto sub = sys.spawn([events](caf::event_based_actor*) -> caf::behavior {
    return {[events](const pb::LeadershipEvent& ev) { events->push_back(ev); }};
  });
  if (membership)
    caf::anon_send(node, subscribe_atom::value, sub, true);
  else
    caf::anon_send(node, subscribe_atom::value, sub);
  return events;
}

class MembershipTest : public ::testing::Test {
protected:
  test_config cfg;
  caf::actor_system sys{cfg};
  driver d{sys, 1, false};
  std::vector<caf::actor> keep; // watchers and change clients, stopped at the end

  ~MembershipTest() override {
    for (auto& a : keep)
      caf::anon_send_exit(a, caf::exit_reason::kill);
    keep.clear();
    d.sched.run();
    sys.clock().cancel_all();
    d.sched.run();
  }

  caf::actor client(cluster& c, std::chrono::milliseconds timeout,
                    std::vector<std::string> contacts = {}) {
    auto o = c.change_options(timeout);
    if (!contacts.empty()) {
      o.contacts.clear();
      for (auto& id : contacts)
        o.contacts.push_back(c.nodes.at(id));
    }
    keep.push_back(spawn_change_client(sys, std::move(o)));
    return keep.back();
  }

  std::unique_ptr<cluster> make(size_t n, uint64_t seed = 1,
                                std::function<void(node_config&)> tweak = nullptr) {
    return std::make_unique<cluster>(sys, n, seed, nullptr, std::move(tweak));
  }

  std::string wait_leader(cluster& c, std::chrono::milliseconds limit = 3000ms) {
    std::string leader;
    d.run_until([&] { return !(leader = agreed_leader(c, d)).empty(); }, limit);
    return leader;
  }

  template <class Resp, class Req>
  caf::expected<Resp> call(const caf::actor& target, Req req,
                           std::chrono::milliseconds limit = 2000ms) {
    auto o = ask_actor<Resp>(sys, target, std::move(req), limit);
    d.run_until([&] { return o->done; }, limit + 10ms);
    EXPECT_TRUE(o->done) << "no answer";
    return o->value;
  }

  // A join or leave through a change client that asks every running node.
  template <class Req>
  caf::expected<pb::MembershipResponse> change(cluster& c, Req req,
                                               std::chrono::milliseconds limit = 5000ms) {
    return call<pb::MembershipResponse>(client(c, limit), std::move(req), limit + 100ms);
  }

  caf::expected<pb::MembershipResponse> joined(const caf::actor& node,
                                               std::chrono::milliseconds limit = 5000ms) {
    return call<pb::MembershipResponse>(node, joined_atom::value, limit);
  }

  pb::NodeStatus status(cluster& c, const std::string& id) {
    auto s = call<pb::NodeStatus>(c.nodes.at(id), status_atom::value);
    return s ? *s : pb::NodeStatus{};
  }

  static const pb::Member* find(const pb::NodeStatus& s, const std::string& id) {
    for (auto& m : s.members())
      if (m.id() == id)
        return &m;
    return nullptr;
  }

  bool wait_voter(cluster& c, const std::string& leader, const std::string& id,
                  std::chrono::milliseconds limit = 3000ms) {
    return d.run_until(
        [&] {
          auto s = status(c, leader);
          auto m = find(s, id);
          return m && !m->learner() && s.commit_index() >= s.last_log_index();
        },
        limit);
  }

  static void expect_safe(const cluster& c) {
    EXPECT_GT(c.checker->steps, 0u) << "the invariant checker saw no step";
    for (auto& v : c.checker->violations)
      ADD_FAILURE() << v;
    for (auto& v : c.net->vote_violations)
      ADD_FAILURE() << v;
  }
};

TEST_F(MembershipTest, NewNodeJoinsAsLearnerIsPromotedAndCountsInTheMajority) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[leader], put("k" + std::to_string(i), "v")));
  auto n4 = c->join("n4");
  auto j = joined(n4);
  ASSERT_TRUE(j) << render(j.error());
  auto m = std::find_if(j->members().begin(), j->members().end(),
                        [](const pb::Member& x) { return x.id() == "n4"; });
  ASSERT_NE(m, j->members().end());
  EXPECT_TRUE(m->learner()) << "a new node is admitted as a learner";
  ASSERT_TRUE(wait_voter(*c, leader, "n4")) << "the learner was never promoted";
  // n4 has everything, and counts: with two of the four nodes cut off, no write commits
  // without it.
  auto r = call<pb::GetResponse>(c->nodes["n4"], get("k29", true));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->found());
  std::string other;
  for (auto& id : c->ids)
    if (id != leader && id != "n4")
      other = id;
  c->net->isolate(other, c->ids);
  ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[leader], put("after", "1")));
  c->net->isolate("n4", c->ids);
  auto w = call<pb::WriteResponse>(c->nodes[leader], put("stuck", "1"), 500ms);
  EXPECT_FALSE(w) << "a write committed with 2 of 4 voters";
  expect_safe(*c);
}

TEST_F(MembershipTest, FollowersRedirectChangesToTheLeaderOrSayItIsUnknown) {
  auto c = make(3);
  // Before any election nobody knows a leader.
  auto early = call<pb::MembershipResponse>(c->nodes["n1"], join_req("n4"));
  ASSERT_FALSE(early);
  EXPECT_TRUE(is(early.error(), errc::unknown_leader)) << render(early.error());
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  auto follower = leader == "n1" ? "n2" : "n1";
  auto r = call<pb::MembershipResponse>(c->nodes[follower], join_req("n4"));
  ASSERT_FALSE(r);
  std::string id, address;
  ASSERT_TRUE(leader_hint(r.error(), id, address)) << render(r.error());
  EXPECT_EQ(id, leader);
  EXPECT_EQ(address, "sim/" + leader);
  // Through a change client the same request gets done (it follows the redirect).
  auto done = call<pb::MembershipResponse>(client(*c, 5000ms, {follower}), join_req("n4"), 5100ms);
  ASSERT_TRUE(done) << render(done.error());
  expect_safe(*c);
}

TEST_F(MembershipTest, RetriedJoinSucceedsOnceAndConflictingJoinsAreRefused) {
  auto c = make(3);
  ASSERT_FALSE(wait_leader(*c).empty());
  auto first = change(*c, join_req("n4", 11));
  ASSERT_TRUE(first) << render(first.error());
  auto again = change(*c, join_req("n4", 11)); // a retry after a lost answer
  ASSERT_TRUE(again) << render(again.error());
  EXPECT_EQ(again->config_index(), first->config_index()) << "the retry added n4 a second time";
  auto other_address = join_req("n4", 11);
  other_address.set_address("sim/elsewhere");
  auto dup = change(*c, other_address);
  ASSERT_FALSE(dup);
  EXPECT_TRUE(is(dup.error(), errc::duplicate_member)) << render(dup.error());
  auto lost_disk = change(*c, join_req("n4", 12)); // same id and address, another incarnation
  ASSERT_FALSE(lost_disk);
  EXPECT_TRUE(is(lost_disk.error(), errc::missing_data)) << render(lost_disk.error());
  auto gone = change(*c, leave_req("n9")); // not a member: nothing to do
  ASSERT_TRUE(gone) << render(gone.error());
  expect_safe(*c);
}

TEST_F(MembershipTest, SafeJoinRefusesToJoinThroughItself) {
  auto c = make(3);
  ASSERT_FALSE(wait_leader(*c).empty());
  auto nc = c->config_for("n1");
  nc.id = "n4";
  nc.address = "sim/n4";
  nc.members.clear();
  nc.storage = std::make_shared<memory_storage>();
  auto opts = c->change_options(std::chrono::seconds{5});
  opts.contact_addresses.push_back("sim/n4");
  auto n = join_cluster(sys, nc, opts);
  ASSERT_FALSE(n);
  EXPECT_TRUE(is(n.error(), errc::self_join)) << render(n.error());
  // A change_request asked to add its own node says so too.
  auto r = call<pb::MembershipResponse>(c->nodes["n1"], join_req("n1"));
  ASSERT_FALSE(r);
  EXPECT_TRUE(is(r.error(), errc::self_join)) << render(r.error());
}

TEST_F(MembershipTest, SafeJoinWithDataRestartsWithoutAMembershipRequest) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_TRUE(joined(c->join("n4")));
  ASSERT_TRUE(wait_voter(*c, leader, "n4"));
  auto before = status(*c, leader);
  c->stop("n4");
  ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[leader], put("while-down", "1")));
  auto n4 = c->join("n4"); // its storage has data: a restart
  auto j = joined(n4);
  ASSERT_TRUE(j) << render(j.error());
  auto st = status(*c, "n4");
  EXPECT_FALSE(st.joining());
  ASSERT_TRUE(d.run_until(
      [&] {
        auto r = call<pb::GetResponse>(c->nodes["n4"], get("while-down", true));
        return r && r->found();
      },
      2000ms));
  auto after = status(*c, leader);
  EXPECT_EQ(after.members_size(), before.members_size());
  EXPECT_EQ(after.last_log_index(), before.last_log_index() + 1)
      << "the restart appended a configuration entry";
  expect_safe(*c);
}

TEST_F(MembershipTest, MemberBackWithoutItsDataIsRefusedUntilRemoved) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  auto victim = leader == "n3" ? "n2" : "n3";
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[leader], put("k" + std::to_string(i), "v")));
  c->stop(victim);
  c->wipe(victim);
  auto n = c->join(victim);
  auto w = watch_exit(sys, n, keep);
  auto j = joined(n);
  ASSERT_FALSE(j);
  EXPECT_TRUE(is(j.error(), errc::missing_data)) << render(j.error());
  d.run_until([&] { return w->down; }, 500ms);
  EXPECT_TRUE(w->down) << "the node without data kept running";
  c->forget(victim);
  // It never took part: nothing it could have acknowledged.
  EXPECT_TRUE(is(w->reason, errc::missing_data)) << render(w->reason);
  // The operator removes the member, and the node joins as a new one.
  ASSERT_TRUE(change(*c, leave_req(victim)));
  c->wipe(victim);
  auto again = c->join(victim);
  ASSERT_TRUE(joined(again));
  ASSERT_TRUE(wait_voter(*c, leader, victim));
  auto r = call<pb::GetResponse>(c->nodes[victim], get("k4", true));
  ASSERT_TRUE(d.run_until(
      [&] {
        r = call<pb::GetResponse>(c->nodes[victim], get("k4", true));
        return r && r->found();
      },
      2000ms));
  expect_safe(*c);
}

TEST_F(MembershipTest, NodeRejoiningUnderItsOldIdReplaysItsOldRemovalAndStays) {
  auto c = make(3, 1, [](node_config& nc) { nc.snapshot_entries = 0; }); // replay the whole log
  auto leader = wait_leader(*c);
  auto victim = leader == "n3" ? "n2" : "n3";
  // Entries before its removal and after it: the new node's log, copied in batches of eight,
  // holds configurations with its id for a while, then one without it, then its new one.
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[leader], put("old" + std::to_string(i), "v")));
  auto w = watch_exit(sys, c->nodes[victim], keep);
  ASSERT_TRUE(change(*c, leave_req(victim)));
  d.run_until([&] { return w->down; }, 3000ms);
  ASSERT_TRUE(w->down);
  c->forget(victim);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[leader], put("k" + std::to_string(i), "v")));
  c->wipe(victim);
  auto again = c->join(victim);
  auto w2 = watch_exit(sys, again, keep);
  ASSERT_TRUE(joined(again));
  // Its log holds the removal of its earlier incarnation: that is not its own removal.
  ASSERT_TRUE(wait_voter(*c, leader, victim));
  d.advance(1000ms);
  EXPECT_FALSE(w2->down) << "the new node stopped: " << render(w2->reason);
  auto r = call<pb::GetResponse>(again, get("k19", true));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->found());
  expect_safe(*c);
}

TEST_F(MembershipTest, JoinRetriedAfterACrashBeforeAdmissionIsTheSameNode) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  // n4 is added, but hears nothing from the cluster before it crashes: no Raft data.
  c->join("n4");
  c->net->isolate("n4", c->ids);
  ASSERT_TRUE(joined(c->nodes["n4"]));
  c->stop("n4");
  c->net->heal();
  auto n4 = c->join("n4"); // no data: it asks again, as the same incarnation
  auto j = joined(n4);
  ASSERT_TRUE(j) << render(j.error());
  ASSERT_TRUE(wait_voter(*c, leader, "n4"));
  expect_safe(*c);
}

TEST_F(MembershipTest, NodeRemovedWhileDownLearnsItAndStopsForGood) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  auto victim = leader == "n3" ? "n2" : "n3";
  c->stop(victim);
  auto r = change(*c, leave_req(victim));
  ASSERT_TRUE(r) << render(r.error());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[leader], put("k" + std::to_string(i), "v")));
  auto term = status(*c, leader).term();
  c->restart(victim); // with its old data, which still lists it as a voter
  auto w = watch_exit(sys, c->nodes[victim], keep);
  d.run_until([&] { return w->down; }, 3000ms);
  ASSERT_TRUE(w->down) << "the removed node kept running";
  EXPECT_TRUE(is(w->reason, errc::removed_member)) << render(w->reason);
  c->forget(victim);
  EXPECT_EQ(agreed_leader(*c, d), leader) << "the removed node disturbed the leader";
  EXPECT_EQ(status(*c, leader).term(), term);
  // Its data directory is marked: it never starts again from it.
  auto again = spawn_node(sys, c->config_for(victim));
  ASSERT_FALSE(again);
  EXPECT_TRUE(is(again.error(), errc::removed_member)) << render(again.error());
  expect_safe(*c);
}

TEST_F(MembershipTest, RemovedFollowerStopsAndTheRestGoOn) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  auto victim = leader == "n3" ? "n2" : "n3";
  auto w = watch_exit(sys, c->nodes[victim], keep);
  auto r = change(*c, leave_req(victim));
  ASSERT_TRUE(r) << render(r.error());
  EXPECT_EQ(r->members_size(), 2);
  d.run_until([&] { return w->down; }, 3000ms);
  ASSERT_TRUE(w->down);
  EXPECT_TRUE(is(w->reason, errc::removed_member)) << render(w->reason);
  c->forget(victim);
  ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[leader], put("two", "nodes")));
  d.advance(2000ms);
  EXPECT_EQ(agreed_leader(*c, d), leader);
  expect_safe(*c);
}

TEST_F(MembershipTest, MembershipEventsGoOnlyToSubscribersThatAskedForThem) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  auto watcher = leader == "n1" ? std::string{"n2"} : std::string{"n1"};
  auto all = subscribe(sys, c->nodes[watcher], true);
  auto leadership_only = subscribe(sys, c->nodes[watcher]);
  d.run();
  auto members = [](const pb::LeadershipEvent& ev) {
    std::vector<std::string> out;
    for (auto& m : ev.members())
      out.push_back(m.id() + (m.learner() ? "(learner)" : ""));
    return out;
  };
  auto changes = [&] {
    std::vector<std::vector<std::string>> out;
    for (auto& ev : *all)
      if (ev.kind() == pb::LeadershipEvent::MEMBERSHIP_CHANGED) {
        EXPECT_EQ(ev.node_id(), watcher);
        out.push_back(members(ev));
      }
    return out;
  };
  // A new subscriber starts from the current configuration.
  ASSERT_EQ(changes().size(), 1u);
  EXPECT_EQ(changes()[0], (std::vector<std::string>{"n1", "n2", "n3"}));
  auto n4 = c->join("n4");
  ASSERT_TRUE(joined(n4));
  ASSERT_TRUE(wait_voter(*c, leader, "n4"));
  auto victim = leader == "n3" ? "n2" : "n3";
  if (victim == watcher)
    victim = "n4";
  ASSERT_TRUE(change(*c, leave_req(victim)));
  d.run_until([&] { return changes().size() >= 4; }, 2000ms);
  auto want_after_leave = std::vector<std::string>{"n1", "n2", "n3", "n4"};
  want_after_leave.erase(std::find(want_after_leave.begin(), want_after_leave.end(), victim));
  EXPECT_EQ(changes(), (std::vector<std::vector<std::string>>{{"n1", "n2", "n3"},
                                                              {"n1", "n2", "n3", "n4(learner)"},
                                                              {"n1", "n2", "n3", "n4"},
                                                              want_after_leave}));
  uint64_t last = 0;
  for (auto& ev : *all)
    if (ev.kind() == pb::LeadershipEvent::MEMBERSHIP_CHANGED) {
      EXPECT_GT(ev.config_index(), last) << "configurations are reported in log order";
      last = ev.config_index();
    }
  for (auto& ev : *leadership_only)
    EXPECT_NE(ev.kind(), pb::LeadershipEvent::MEMBERSHIP_CHANGED);
  EXPECT_FALSE(leadership_only->empty());
  expect_safe(*c);
}

TEST_F(MembershipTest, RemovedLeaderStepsDownAfterCommitAndAnotherLeads) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  auto term = status(*c, leader).term();
  auto w = watch_exit(sys, c->nodes[leader], keep);
  auto r = call<pb::MembershipResponse>(c->nodes[leader], leave_req(leader));
  ASSERT_TRUE(r) << render(r.error());
  d.run_until([&] { return w->down; }, 1000ms);
  ASSERT_TRUE(w->down) << "the removed leader kept running";
  EXPECT_TRUE(is(w->reason, errc::removed_member)) << render(w->reason);
  c->forget(leader);
  auto next = wait_leader(*c);
  ASSERT_FALSE(next.empty());
  EXPECT_NE(next, leader);
  EXPECT_GT(status(*c, next).term(), term);
  ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[next], put("after", "1")));
  expect_safe(*c);
}

TEST_F(MembershipTest, RemovedNodeThatNeverCampaignsIsToldAndStops) {
  // n3 may not campaign: it never sends a vote request, so only the leader can tell it.
  auto c = make(3, 1, [](node_config& nc) { nc.electable = nc.id != "n3"; });
  auto leader = wait_leader(*c);
  ASSERT_NE(leader, "n3");
  auto w = watch_exit(sys, c->nodes["n3"], keep);
  ASSERT_TRUE(change(*c, leave_req("n3")));
  d.run_until([&] { return w->down; }, 3000ms);
  ASSERT_TRUE(w->down) << "n3 never learned it was removed";
  EXPECT_TRUE(is(w->reason, errc::removed_member)) << render(w->reason);
  expect_safe(*c);
}

TEST_F(MembershipTest, LeaderThatNeverSawItsRemovalCommitLearnsItAndStops) {
  auto c = make(3);
  auto old = wait_leader(*c);
  auto term = status(*c, old).term();
  // The others store the removal, but none of their answers reaches the old leader: it cannot
  // know the removal committed, and steps down (check-quorum) with it in its log.
  c->net->script = [old](const std::string&, const std::string& to, caf::message& m) {
    return to == old && m.match_elements<pb::AppendEntriesResponse>();
  };
  auto w = watch_exit(sys, c->nodes[old], keep);
  auto pending = ask_actor<pb::MembershipResponse>(sys, c->nodes[old], leave_req(old), 1s);
  d.run_until([&] { return w->down; }, 5000ms);
  ASSERT_TRUE(w->down) << "the old leader never learned it was removed";
  EXPECT_TRUE(is(w->reason, errc::removed_member)) << render(w->reason);
  c->forget(old);
  c->net->heal();
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  EXPECT_LE(status(*c, leader).term(), term + 2) << "the removed node kept raising the term";
  expect_safe(*c);
}

TEST_F(MembershipTest, TransferToANodeThatMayNotCampaignTimesOut) {
  auto c = make(3, 1, [](node_config& nc) { nc.electable = nc.id != "n3"; });
  auto leader = wait_leader(*c);
  pb::TransferLeadershipRequest t;
  t.set_target("n3");
  auto r = call<pb::LeaderInfo>(c->nodes[leader], t);
  ASSERT_FALSE(r);
  EXPECT_TRUE(is(r.error(), errc::timeout)) << render(r.error());
  EXPECT_EQ(agreed_leader(*c, d), leader);
  // Writes go on after the failed transfer.
  ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[leader], put("k", "v")));
}

TEST_F(MembershipTest, LeaderLookupSaysUnknownOnceTheLeaderIsGone) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  auto other = leader == "n1" ? std::string{"n2"} : std::string{"n1"};
  auto third = leader != "n3" && other != "n3" ? std::string{"n3"} : std::string{"n2"};
  c->stop(leader);
  c->stop(third); // no majority: nobody can be elected
  d.advance(1000ms);
  auto info = call<pb::LeaderInfo>(c->nodes[other], leader_atom::value);
  ASSERT_FALSE(info) << "still names " << info->id();
  EXPECT_TRUE(is(info.error(), errc::unknown_leader)) << render(info.error());
}

TEST_F(MembershipTest, OperatorAddsAMemberThatJoinsLater) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  auto added = change(*c, join_req("n4", 0)); // the operator's add: no incarnation yet
  ASSERT_TRUE(added) << render(added.error());
  auto n4 = c->join("n4"); // the node starts later and claims the member
  auto j = joined(n4);
  ASSERT_TRUE(j) << render(j.error());
  ASSERT_TRUE(wait_voter(*c, leader, "n4"));
  expect_safe(*c);
}

TEST_F(MembershipTest, RemovedLeaderAnswersTheWritesItCommittedBeforeItLeaves) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  auto& node = c->nodes[leader];
  auto w1 = ask_actor<pb::WriteResponse>(sys, node, put("a", "1"), 2s);
  auto leave = ask_actor<pb::MembershipResponse>(sys, node, leave_req(leader), 2s);
  d.run_until([&] { return w1->done && leave->done; }, 2000ms);
  ASSERT_TRUE(leave->done && leave->value) << render(leave->value.error());
  ASSERT_TRUE(w1->done);
  EXPECT_TRUE(w1->value) << "a committed write was answered " << render(w1->value.error());
}

TEST_F(MembershipTest, ChangeSentToAnIsolatedLeaderNeverCommitsThereAndIsRedirected) {
  auto c = make(3);
  auto old = wait_leader(*c);
  c->net->isolate(old, c->ids);
  // A caller that only knows the old leader: the leader appends the change but cannot commit
  // it, steps down (check-quorum) and cannot name a new leader; the caller times out.
  auto lone = call<pb::MembershipResponse>(client(*c, 3000ms, {old}), join_req("n4"), 3100ms);
  ASSERT_FALSE(lone);
  EXPECT_TRUE(is(lone.error(), errc::timeout)) << render(lone.error());
  auto statuses_now = statuses(*c, d);
  EXPECT_NE(statuses_now.at(old).role(), "leader");
  for (auto& [id, s] : statuses_now) {
    if (id != old) {
      EXPECT_EQ(find(s, "n4"), nullptr) << "the change reached " << id;
    }
  }
  // A caller that knows another node too is redirected to the majority's new leader.
  std::string other = old == "n1" ? "n2" : "n1";
  auto done =
      call<pb::MembershipResponse>(client(*c, 5000ms, {old, other}), join_req("n4"), 5100ms);
  ASSERT_TRUE(done) << render(done.error());
  c->net->heal();
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  EXPECT_NE(leader, old);
  auto s = status(*c, leader);
  int n4 = 0;
  for (auto& m : s.members())
    n4 += m.id() == "n4";
  EXPECT_EQ(n4, 1);
  expect_safe(*c);
}

TEST_F(MembershipTest, ConcurrentChangesRunOneAtATimeAndAFullQueueIsRefused) {
  auto c = make(3, 1, [](node_config& nc) { nc.max_pending_changes = 2; });
  auto leader = wait_leader(*c);
  auto& node = c->nodes[leader];
  auto a = ask_actor<pb::MembershipResponse>(sys, node, join_req("n4"), 5s);
  auto b = ask_actor<pb::MembershipResponse>(sys, node, join_req("n5"), 5s);
  auto x = ask_actor<pb::MembershipResponse>(sys, node, leave_req("n4"), 5s);
  auto y = ask_actor<pb::MembershipResponse>(sys, node, join_req("n6"), 5s);
  d.run_until([&] { return a->done && b->done && x->done && y->done; }, 5000ms);
  ASSERT_TRUE(a->done && b->done && x->done && y->done);
  ASSERT_TRUE(a->value) << render(a->value.error());
  ASSERT_TRUE(b->value) << render(b->value.error());
  ASSERT_TRUE(x->value) << render(x->value.error());
  ASSERT_FALSE(y->value) << "a fourth request fit in a queue of one running and two waiting";
  EXPECT_TRUE(is(y->value.error(), errc::overloaded)) << render(y->value.error());
  // In order, each after the one before it was committed.
  EXPECT_LT(a->value->config_index(), b->value->config_index());
  EXPECT_LT(b->value->config_index(), x->value->config_index());
  auto s = status(*c, leader);
  EXPECT_NE(find(s, "n5"), nullptr);
  EXPECT_EQ(find(s, "n4"), nullptr);
  expect_safe(*c);
}

TEST_F(MembershipTest, LeaderLookupEventsAndWaitingForTheNextLeader) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  auto follower = leader == "n1" ? std::string{"n2"} : std::string{"n1"};
  auto info = call<pb::LeaderInfo>(c->nodes[follower], leader_atom::value);
  ASSERT_TRUE(info) << render(info.error());
  EXPECT_EQ(info->id(), leader);
  EXPECT_EQ(info->address(), "sim/" + leader);
  auto term = info->term();
  auto on_leader = subscribe(sys, c->nodes[leader]);
  auto on_follower = subscribe(sys, c->nodes[follower]);
  auto next_leader = ask_actor<pb::LeaderInfo>(
      sys, c->nodes[follower], caf::make_message(wait_leader_atom::value, term), 5s);
  d.advance(10ms);
  EXPECT_FALSE(next_leader->done) << "answered before the leadership changed";
  pb::TransferLeadershipRequest t;
  t.set_target(follower);
  auto moved = call<pb::LeaderInfo>(c->nodes[leader], t);
  ASSERT_TRUE(moved) << render(moved.error());
  EXPECT_EQ(moved->id(), follower);
  d.run_until([&] { return next_leader->done; }, 2000ms);
  ASSERT_TRUE(next_leader->done && next_leader->value);
  EXPECT_EQ(next_leader->value->id(), follower);
  EXPECT_GT(next_leader->value->term(), term);
  EXPECT_EQ(wait_leader(*c), follower);
  auto kinds = [](const std::vector<pb::LeadershipEvent>& evs) {
    std::vector<int> out;
    for (auto& e : evs)
      out.push_back(e.kind());
    return out;
  };
  // The old leader: it led, then lost it, then learned of the new leader.
  EXPECT_EQ(kinds(*on_leader), (std::vector<int>{pb::LeadershipEvent::BECAME_LEADER,
                                                 pb::LeadershipEvent::LOST_LEADERSHIP,
                                                 pb::LeadershipEvent::LEADER_CHANGED}));
  // The new leader: followed the old one, then became leader itself.
  EXPECT_EQ(kinds(*on_follower), (std::vector<int>{pb::LeadershipEvent::LEADER_CHANGED,
                                                   pb::LeadershipEvent::BECAME_LEADER}));
  ASSERT_FALSE(on_follower->empty());
  EXPECT_EQ(on_follower->back().leader_id(), follower);
  EXPECT_EQ(on_follower->back().term(), next_leader->value->term());
  expect_safe(*c);
}

TEST_F(MembershipTest, TransferToTheMostUpToDateAndStepDown) {
  auto c = make(5);
  auto leader = wait_leader(*c);
  auto moved = call<pb::LeaderInfo>(c->nodes[leader], pb::TransferLeadershipRequest{});
  ASSERT_TRUE(moved) << render(moved.error());
  EXPECT_NE(moved->id(), leader);
  auto next = wait_leader(*c);
  EXPECT_EQ(next, moved->id());
  // Step down: the leader gives up and lets another node win.
  auto down = call<uint64_t>(c->nodes[next], step_down_atom::value);
  ASSERT_TRUE(down) << render(down.error());
  auto third = wait_leader(*c);
  ASSERT_FALSE(third.empty());
  EXPECT_NE(third, next);
  // A follower asked to transfer redirects to the leader; a learner cannot be a target.
  auto wrong = call<pb::LeaderInfo>(c->nodes[next], pb::TransferLeadershipRequest{});
  ASSERT_FALSE(wrong);
  std::string id, address;
  EXPECT_TRUE(leader_hint(wrong.error(), id, address)) << render(wrong.error());
  EXPECT_EQ(id, third);
  expect_safe(*c);
}

TEST_F(MembershipTest, NonElectableNodesNeverLeadAndPriorityIsPreferred) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto c = make(3, seed, [](node_config& nc) { nc.electable = nc.id == "n3"; });
    EXPECT_EQ(wait_leader(*c), "n3") << "seed " << seed;
    c->stop("n3");
    d.advance(2000ms);
    for (auto& [id, s] : statuses(*c, d))
      EXPECT_NE(s.role(), "leader") << id << " is not electable, seed " << seed;
  }
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto c = make(3, seed, [](node_config& nc) { nc.priority = nc.id == "n2" ? 100 : 0; });
    EXPECT_EQ(wait_leader(*c), "n2") << "seed " << seed;
  }
  // The policy hook: only nodes whose hook says yes campaign.
  auto c = make(3, 9, [](node_config& nc) {
    nc.may_campaign = [id = nc.id](const raft_state&) { return id == "n1"; };
  });
  EXPECT_EQ(wait_leader(*c), "n1");
}

// The validity check of docs/membership.md, "Leadership hooks". Every node rejects a leader of
// term 1 other than itself: the followers each tell their subscribers once and ask that
// leader, through their peers, to step down; a leader of a later term passes, and the cluster
// takes writes. A node that rejects itself steps down at once.
TEST_F(MembershipTest, ALeaderThatFailsTheValidityCheckIsAskedToStepDown) {
  auto events = std::make_shared<std::vector<pb::LeadershipEvent>>();
  auto check = [&](bool reject_self) {
    events->clear();
    auto c = make(3, 1, [reject_self](node_config& nc) {
      nc.valid_leader = [reject_self, me = nc.id](const std::string& id, uint64_t term) {
        return term > 1 || (id == me && !reject_self);
      };
    });
    auto sub = sys.spawn([=](caf::event_based_actor*) -> caf::behavior {
      return {[=](const pb::LeadershipEvent& ev) { events->push_back(ev); }};
    });
    keep.push_back(sub);
    for (auto& [id, n] : c->nodes)
      caf::anon_send(n, subscribe_atom::value, sub);
    d.run();
    ASSERT_FALSE(wait_leader(*c).empty());
    d.advance(3000ms);
    auto leader = wait_leader(*c);
    ASSERT_FALSE(leader.empty());
    EXPECT_GT(statuses(*c, d)[leader].term(), 1u);
    std::multiset<std::string> reported;
    std::set<std::string> invalid;
    for (auto& ev : *events)
      if (ev.kind() == pb::LeadershipEvent::LEADER_INVALID) {
        EXPECT_EQ(ev.term(), 1u);
        reported.insert(ev.node_id());
        invalid.insert(ev.leader_id());
      }
    EXPECT_EQ(invalid.size(), 1u) << "one leader in term 1";
    if (reject_self) { // the leader rejects itself before anyone else learns of it
      ASSERT_EQ(reported.size(), 1u);
      EXPECT_EQ(*reported.begin(), *invalid.begin());
    } else { // each follower once
      EXPECT_EQ(reported.size(), 2u);
      EXPECT_EQ(std::set<std::string>(reported.begin(), reported.end()).size(), 2u);
      EXPECT_EQ(reported.count(*invalid.begin()), 0u);
    }
    ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[leader], put("k", "v")));
    expect_safe(*c);
  };
  check(false);
  check(true);
}

// The leadership hooks of docs/membership.md: a new leader serves no write until its
// on_become_leader calls done; a transfer waits for before_transfer's done; a hook that never
// calls done is cut off by leader_hook_timeout.
TEST_F(MembershipTest, LeadershipHooksRunBeforeServingAndBeforeTransfer) {
  auto dones = std::make_shared<std::map<std::string, std::function<void()>>>();
  auto calls = std::make_shared<std::vector<std::string>>();
  auto c = make(3, 1, [=](node_config& nc) {
    nc.leader_hook_timeout = 500ms;
    nc.on_become_leader = [=, me = nc.id](uint64_t, std::function<void()> done) {
      calls->push_back(me + " leads");
      (*dones)[me] = std::move(done);
    };
    nc.before_transfer = [=, me = nc.id](uint64_t, const std::string&, std::function<void()> done) {
      calls->push_back(me + " hands over");
      (*dones)[me + "/transfer"] = std::move(done);
    };
  });
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  ASSERT_EQ(*calls, std::vector<std::string>{leader + " leads"});
  // A write waits for the hook's done.
  auto w = ask_actor<pb::WriteResponse>(sys, c->nodes[leader], put("k", "v1"), 5000ms);
  d.advance(300ms);
  EXPECT_FALSE(w->done) << "the leader served before on_become_leader was done";
  (*dones)[leader]();
  d.run_until([&] { return w->done; }, 200ms);
  ASSERT_TRUE(w->done);
  ASSERT_TRUE(w->value) << render(w->value.error());
  // A transfer waits for before_transfer's done.
  auto t =
      ask_actor<pb::LeaderInfo>(sys, c->nodes[leader], pb::TransferLeadershipRequest{}, 5000ms);
  d.advance(300ms);
  EXPECT_FALSE(t->done) << "the transfer went on before before_transfer was done";
  ASSERT_EQ(calls->back(), leader + " hands over");
  (*dones)[leader + "/transfer"]();
  d.run_until([&] { return t->done; }, 2000ms);
  ASSERT_TRUE(t->done);
  ASSERT_TRUE(t->value) << render(t->value.error());
  auto next = t->value->id();
  EXPECT_NE(next, leader);
  auto next_leader = wait_leader(*c);
  ASSERT_EQ(next_leader, next);
  EXPECT_EQ(calls->back(), next + " leads");
  // This one never calls done: writes wait out leader_hook_timeout, then are served.
  auto w2 = ask_actor<pb::WriteResponse>(sys, c->nodes[next], put("k", "v2"), 5000ms);
  d.advance(200ms);
  EXPECT_FALSE(w2->done);
  d.run_until([&] { return w2->done; }, 1000ms);
  ASSERT_TRUE(w2->done) << "a stuck hook held the leader";
  ASSERT_TRUE(w2->value) << render(w2->value.error());
  // Nor does a before_transfer that never calls done hold a transfer.
  auto t2 = ask_actor<pb::LeaderInfo>(sys, c->nodes[next], pb::TransferLeadershipRequest{}, 5000ms);
  d.advance(200ms);
  EXPECT_FALSE(t2->done);
  d.run_until([&] { return t2->done; }, 2000ms);
  ASSERT_TRUE(t2->done) << "a stuck before_transfer held the transfer";
  ASSERT_TRUE(t2->value) << render(t2->value.error());
  EXPECT_NE(t2->value->id(), next);
  expect_safe(*c);
}

TEST_F(MembershipTest, SlowSubscriberNeverBlocksTheNodeAndDropsAreCounted) {
  auto c = make(3, 1, [](node_config& nc) { nc.max_pending_events = 2; });
  auto leader = wait_leader(*c);
  // A subscriber that holds on to its first event until it is told to go on.
  auto got = std::make_shared<std::vector<pb::LeadershipEvent>>();
  auto sub = sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    auto held = std::make_shared<std::vector<caf::response_promise>>();
    auto release = std::make_shared<bool>(false);
    return {
        [=](const pb::LeadershipEvent& ev) {
          got->push_back(ev);
          auto rp = self->make_response_promise();
          if (*release)
            rp.deliver(caf::message{});
          else
            held->push_back(rp);
          return rp;
        },
        [=](int) {
          *release = true;
          for (auto& rp : *held)
            rp.deliver(caf::message{});
          held->clear();
        },
    };
  });
  keep.push_back(sub);
  caf::anon_send(c->nodes["n1"], subscribe_atom::value, sub);
  d.run();
  for (int i = 0; i < 4; ++i) { // leadership moves around while the subscriber is stuck
    auto now = wait_leader(*c);
    ASSERT_FALSE(now.empty());
    ASSERT_TRUE(call<pb::LeaderInfo>(c->nodes[now], pb::TransferLeadershipRequest{}));
  }
  EXPECT_EQ(got->size(), 1u) << "the node sent more while the subscriber had not answered";
  // Writes went on meanwhile.
  auto now = wait_leader(*c);
  ASSERT_TRUE(call<pb::WriteResponse>(c->nodes[now], put("k", "v")));
  caf::anon_send(sub, 1);
  d.advance(50ms);
  ASSERT_GE(got->size(), 2u);
  uint64_t dropped = 0;
  for (auto& ev : *got)
    dropped += ev.dropped();
  EXPECT_GT(dropped, 0u) << "events beyond the queue were not counted";
  EXPECT_FALSE(leader.empty());
}

} // namespace
} // namespace cafraft::test

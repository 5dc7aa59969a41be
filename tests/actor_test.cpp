// Deterministic tests of a cluster of node actors under CAF's test scheduler, in virtual
// time. Messages between nodes pass through link actors that can cut connections.
#include <gtest/gtest.h>

#include "cluster_test.hpp"

namespace cafraft::test {
namespace {

class ClusterTest : public cluster_test {
protected:
  std::unique_ptr<cluster> make(size_t n, uint64_t seed = 1) {
    return std::make_unique<cluster>(sys, n, seed, nullptr);
  }

  static void expect_safe(const cluster& c) {
    EXPECT_GT(c.checker->steps, 0u) << "the invariant checker saw no step";
    for (auto& v : c.checker->violations)
      ADD_FAILURE() << v;
  }
};

TEST_F(ClusterTest, OneLeaderIsElected) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  auto st = statuses(*c, d);
  int leaders = 0;
  for (auto& [id, s] : st)
    leaders += s.role() == "leader";
  EXPECT_EQ(leaders, 1);
  EXPECT_GE(st[leader].term(), 1u);
  expect_safe(*c);
}

TEST_F(ClusterTest, WritesCommitApplyEverywhereAndReadsSeeThem) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  uint64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    auto w = call<pb::WriteResponse>(*c, leader, put("k" + std::to_string(i), "v"));
    ASSERT_TRUE(w) << render(w.error());
    EXPECT_GT(w->index(), last); // one log index per write, in order
    last = w->index();
  }
  auto r = call<pb::GetResponse>(*c, leader, get("k7"));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->found());
  EXPECT_EQ(r->value(), "v");
  EXPECT_GE(r->applied_index(), last);
  d.advance(200ms); // followers learn the commit index with the next heartbeat
  for (auto& [id, s] : statuses(*c, d))
    EXPECT_EQ(s.applied_index(), last) << id;
  for (auto& id : c->ids) {
    auto stale = call<pb::GetResponse>(*c, id, get("k19", true));
    ASSERT_TRUE(stale);
    EXPECT_TRUE(stale->found()) << id;
  }
  expect_safe(*c);
}

TEST_F(ClusterTest, ManyConcurrentProposalsShareAppends) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  auto before = c->disks[leader]->writes();
  std::vector<std::shared_ptr<outcome<pb::WriteResponse>>> outs;
  for (int i = 0; i < 100; ++i)
    outs.push_back(c->ask<pb::WriteResponse>(leader, put("k" + std::to_string(i), "v")));
  d.run_until(
      [&] {
        for (auto& o : outs)
          if (!o->done)
            return false;
        return true;
      },
      2000ms);
  std::set<uint64_t> indexes;
  for (auto& o : outs) {
    ASSERT_TRUE(o->done && o->value);
    indexes.insert(o->value->index());
  }
  EXPECT_EQ(indexes.size(), 100u);
  // 100 proposals that arrived together are written in far fewer storage writes.
  EXPECT_LT(c->disks[leader]->writes() - before, 10u);
  expect_safe(*c);
}

TEST_F(ClusterTest, FollowerRedirectsToLeader) {
  auto c = make(3);
  // Before any election no leader is known.
  auto early = call<pb::WriteResponse>(*c, "n1", put("a", "1"));
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error(), make_error(errc::unknown_leader));
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  for (auto& id : c->ids) {
    if (id == leader)
      continue;
    auto w = call<pb::WriteResponse>(*c, id, put("a", "1"));
    ASSERT_FALSE(w);
    std::string hint_id, hint_address;
    ASSERT_TRUE(leader_hint(w.error(), hint_id, hint_address)) << render(w.error());
    EXPECT_EQ(hint_id, leader);
    EXPECT_EQ(hint_address, "sim/" + leader);
    auto r = call<pb::GetResponse>(*c, id, get("a"));
    ASSERT_FALSE(r);
    EXPECT_TRUE(leader_hint(r.error(), hint_id, hint_address));
  }
}

TEST_F(ClusterTest, NewLeaderInLaterTermAfterLeaderStops) {
  auto c = make(3);
  auto first = wait_leader(*c);
  ASSERT_FALSE(first.empty());
  auto term = statuses(*c, d)[first].term();
  ASSERT_TRUE(call<pb::WriteResponse>(*c, first, put("x", "1")));
  c->stop(first);
  auto second = wait_leader(*c);
  ASSERT_FALSE(second.empty());
  EXPECT_NE(second, first);
  EXPECT_GT(statuses(*c, d)[second].term(), term);
  auto r = call<pb::GetResponse>(*c, second, get("x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value(), "1"); // the committed write survived the leader
  ASSERT_TRUE(call<pb::WriteResponse>(*c, second, put("x", "2")));
  c->restart(first); // back from its storage, it follows and catches up
  d.advance(500ms);
  auto st = statuses(*c, d);
  EXPECT_EQ(st[first].role(), "follower");
  EXPECT_EQ(st[first].applied_index(), st[second].commit_index());
  expect_safe(*c);
}

TEST_F(ClusterTest, CutOffLeaderAnswersNoReadStepsDownAndFailsPendingWrites) {
  auto c = make(3);
  auto old = wait_leader(*c);
  ASSERT_FALSE(old.empty());
  ASSERT_TRUE(call<pb::WriteResponse>(*c, old, put("x", "old")));
  c->net->isolate(old, c->ids);
  // The cut-off leader takes a write and a read; neither can be confirmed by a majority.
  auto pending_write = c->ask<pb::WriteResponse>(old, put("lost", "1"), 10s);
  auto pending_read = c->ask<pb::GetResponse>(old, get("x"), 10s);
  std::string fresh;
  d.run_until(
      [&] {
        auto st = statuses(*c, d);
        for (auto& [id, s] : st)
          if (id != old && s.role() == "leader")
            fresh = id;
        return !fresh.empty();
      },
      3000ms);
  ASSERT_FALSE(fresh.empty());
  ASSERT_TRUE(call<pb::WriteResponse>(*c, fresh, put("x", "new")));
  // Check-quorum: with no majority answering for an election timeout, the old leader steps
  // down on its own and tells its clients, while it is still cut off.
  d.run_until([&] { return pending_read->done && pending_write->done; }, 1000ms);
  EXPECT_EQ(statuses(*c, d)[old].role(), "follower");
  c->net->heal();
  ASSERT_TRUE(pending_read->done);
  ASSERT_FALSE(pending_read->value);
  EXPECT_EQ(pending_read->value.error(), make_error(errc::leadership_lost));
  ASSERT_TRUE(pending_write->done);
  ASSERT_FALSE(pending_write->value);
  EXPECT_EQ(pending_write->value.error(), make_error(errc::leadership_lost));
  EXPECT_TRUE(is_indefinite(pending_write->value.error()));
  // The divergent entry of the old leader was removed; everyone applies the same log.
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  auto r = call<pb::GetResponse>(*c, leader, get("x"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value(), "new");
  auto lost = call<pb::GetResponse>(*c, leader, get("lost"));
  ASSERT_TRUE(lost);
  EXPECT_FALSE(lost->found());
  d.advance(300ms);
  auto st = statuses(*c, d);
  for (auto& [id, s] : st)
    EXPECT_EQ(s.last_log_index(), st[leader].last_log_index()) << id;
  expect_safe(*c);
}

// A node that is stopped fails what waits at it at once, not at the callers' timeouts: a write
// and a read the leader holds get leadership_lost (the write may still be committed by the
// others), a wait for a leader change gets shutting_down.
TEST_F(ClusterTest, ANodeThatIsStoppedFailsWhatWaitsAtItAtOnce) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  auto term = statuses(*c, d)[leader].term();
  c->net->isolate(leader, c->ids); // nothing it takes can commit
  auto write = c->ask<pb::WriteResponse>(leader, put("k", "v"), 10s);
  auto read = c->ask<pb::GetResponse>(leader, get("k"), 10s);
  auto waiter = ask_actor<pb::LeaderInfo>(sys, c->nodes[leader],
                                          caf::make_message(wait_leader_atom::value, term), 10s);
  d.advance(20ms); // less than an election timeout: it still leads
  ASSERT_FALSE(write->done || read->done || waiter->done);
  caf::anon_send_exit(c->nodes[leader], caf::exit_reason::user_shutdown);
  d.run_until([&] { return write->done && read->done && waiter->done; }, 50ms);
  ASSERT_TRUE(write->done && read->done && waiter->done);
  ASSERT_FALSE(write->value);
  EXPECT_EQ(write->value.error(), make_error(errc::leadership_lost));
  EXPECT_TRUE(is_indefinite(write->value.error()));
  ASSERT_FALSE(read->value);
  EXPECT_EQ(read->value.error(), make_error(errc::leadership_lost));
  ASSERT_FALSE(waiter->value);
  EXPECT_EQ(waiter->value.error(), make_error(errc::shutting_down));
  EXPECT_FALSE(is_indefinite(waiter->value.error()));
  // A joining node that is stopped before it was admitted tells whoever waits for its join.
  auto n4 = c->join("n4");
  auto joined =
      ask_actor<pb::MembershipResponse>(sys, n4, caf::make_message(joined_atom::value), 10s);
  d.advance(20ms);
  ASSERT_FALSE(joined->done) << "n4 was admitted by a cluster without a leader";
  caf::anon_send_exit(n4, caf::exit_reason::user_shutdown);
  d.run_until([&] { return joined->done; }, 50ms);
  ASSERT_TRUE(joined->done);
  ASSERT_FALSE(joined->value);
  EXPECT_EQ(joined->value.error(), make_error(errc::shutting_down));
}

TEST_F(ClusterTest, CandidateWithStaleLogCannotWin) {
  // §5.4.1: n3 misses committed writes; once the leader is gone only the up-to-date node can
  // be elected, however often n3 times out first.
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    auto c = std::make_unique<cluster>(sys, 3, seed, nullptr);
    auto leader = wait_leader(*c);
    ASSERT_FALSE(leader.empty());
    std::string stale, current;
    for (auto& id : c->ids)
      if (id != leader)
        (stale.empty() ? stale : current) = id;
    c->net->isolate(stale, c->ids);
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put("k", std::to_string(i))));
    c->stop(leader);
    c->net->heal();
    auto next = wait_leader(*c, 5000ms);
    EXPECT_EQ(next, current) << "seed " << seed;
    auto r = call<pb::GetResponse>(*c, next, get("k"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->value(), "4");
    expect_safe(*c);
  }
}

// Figure 8 of the Raft paper (§5.4.2). An entry of an older term that sits on a majority is
// not committed by counting replicas: a later leader may still overwrite it. Counting would
// commit it here, and the invariant checker would see the committed entry replaced.
TEST_F(ClusterTest, Figure8EntryOfOlderTermIsNotCommittedByCounting) {
  auto net = std::make_shared<network>(1);
  auto c = std::make_unique<cluster>(sys, 5, 1, net);
  auto carries = [](const caf::message& m, auto pred) {
    if (!m.match_elements<pb::AppendEntries>())
      return false;
    for (auto& e : m.get_as<pb::AppendEntries>(0).entries())
      if (pred(e))
        return true;
    return false;
  };
  auto leader_among = [&](const std::vector<std::string>& ids) {
    std::string found;
    d.run_until(
        [&] {
          auto st = statuses(*c, d);
          for (auto& id : ids)
            if (st.count(id) && st[id].role() == "leader")
              found = id;
          return !found.empty();
        },
        5000ms);
    return found;
  };
  // (a) s1 leads; its no-op at index 1 commits everywhere.
  auto s1 = wait_leader(*c);
  ASSERT_FALSE(s1.empty());
  std::vector<std::string> rest;
  for (auto& id : c->ids)
    if (id != s1)
      rest.push_back(id);
  auto s2 = rest[0];
  std::vector<std::string> others{rest[1], rest[2], rest[3]};
  // (b) A write reaches s2 only, at index 2 in s1's term; then s1 crashes.
  net->partition({s1, s2}, others);
  auto lost = c->ask<pb::WriteResponse>(s1, put("x", "old"), 10s);
  d.run_until([&] { return statuses(*c, d)[s2].last_log_index() == 2; }, 1000ms);
  ASSERT_EQ(statuses(*c, d)[s2].last_log_index(), 2u);
  c->stop(s1);
  // (c) The three others elect a leader in a later term. Its no-op at index 2 reaches nobody,
  // and it crashes.
  net->script = [&](const std::string& from, const std::string&, caf::message& m) {
    return from != s2 && carries(m, [](const pb::LogEntry&) { return true; });
  };
  auto s5 = leader_among(others);
  ASSERT_FALSE(s5.empty());
  EXPECT_EQ(statuses(*c, d)[s5].last_log_index(), 2u);
  c->stop(s5);
  std::string s3, s4;
  for (auto& id : others)
    if (id != s5)
      (s3.empty() ? s3 : s4) = id;
  // (d) s1 restarts and leads again, with s3 and s4 (s2 is cut off). It sends them its old
  // entry at index 2, but every entry from index 3 on (its no-op first) is cut from its
  // messages on the way: index 2 is then on s1, s3 and s4, a majority of five, in an older term.
  net->heal();
  net->isolate(s2, c->ids);
  net->script = [&](const std::string&, const std::string&, caf::message& m) {
    if (m.match_elements<pb::AppendEntries>()) {
      auto& entries = *m.get_mutable_as<pb::AppendEntries>(0).mutable_entries();
      while (!entries.empty() && entries.rbegin()->index() >= 3)
        entries.RemoveLast();
    }
    return false;
  };
  c->restart(s1);
  ASSERT_EQ(leader_among({s1}), s1);
  d.run_until(
      [&] {
        auto st = statuses(*c, d);
        return st[s3].last_log_index() == 2 && st[s4].last_log_index() == 2;
      },
      2000ms);
  d.advance(500ms);
  auto st = statuses(*c, d);
  ASSERT_EQ(st[s1].role(), "leader");
  ASSERT_EQ(st[s3].last_log_index(), 2u);
  ASSERT_EQ(st[s4].last_log_index(), 2u);
  EXPECT_LT(st[s1].commit_index(), 2u) << "an entry of an older term was committed by counting";
  // (e) s1 crashes; s5 comes back and, with the more up-to-date last term, is the only node
  // that can win (the others cannot reach each other). It replaces index 2 everywhere.
  c->stop(s1);
  net->heal();
  for (auto& [a, b] : {std::pair{s2, s3}, {s2, s4}, {s3, s4}}) {
    net->cut.emplace(a, b);
    net->cut.emplace(b, a);
  }
  c->restart(s5);
  ASSERT_EQ(leader_among({s5}), s5);
  net->heal();
  auto leader = wait_leader(*c);
  ASSERT_EQ(leader, s5);
  auto r = call<pb::GetResponse>(*c, leader, get("x"));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->found()) << "the uncommitted write of the old term survived";
  EXPECT_FALSE(lost->done && lost->value) << "the lost write was acknowledged";
  expect_safe(*c);
}

TEST_F(ClusterTest, HealthyClusterKeepsItsLeaderAndStaleTimersDoNothing) {
  auto c = make(5);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  auto term = statuses(*c, d)[leader].term();
  // Every heartbeat re-arms the followers' election timers; the older timers still fire and
  // must do nothing, or an election would start.
  d.advance(10000ms);
  EXPECT_EQ(agreed_leader(*c, d), leader);
  EXPECT_EQ(statuses(*c, d)[leader].term(), term);
  expect_safe(*c);
}

TEST_F(ClusterTest, SingleNodeClusterCommitsAlone) {
  auto c = make(1);
  auto leader = wait_leader(*c);
  ASSERT_EQ(leader, "n1");
  auto w = call<pb::WriteResponse>(*c, "n1", put("a", "1"));
  ASSERT_TRUE(w);
  auto r = call<pb::GetResponse>(*c, "n1", get("a"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value(), "1");
}

TEST_F(ClusterTest, InvalidRequestsAreRejected) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  auto w = call<pb::WriteResponse>(*c, leader, put("", "1"));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), static_cast<uint8_t>(errc::invalid_request));
  // A message no node understands gets invalid_request and harms nothing.
  auto odd = call<pb::WriteResponse>(*c, leader, std::string{"garbage"});
  ASSERT_FALSE(odd);
  EXPECT_TRUE(call<pb::WriteResponse>(*c, leader, put("a", "1")));
}

// A follower that was away while the leader compacted its log catches up from the snapshot,
// sent in chunks; a lost chunk is sent again from where the follower is, not from the start.
// Restarted afterwards, it comes back from its snapshot and its log.
TEST_F(ClusterTest, LaggingFollowerCatchesUpFromASnapshotSentInChunks) {
  constexpr size_t chunk = 64;
  auto net = std::make_shared<network>(7);
  auto tweak = [](node_config& nc) {
    nc.snapshot_entries = 10;
    nc.snapshot_chunk_bytes = chunk;
  };
  cluster c{sys, 3, 1, net, tweak};
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  std::string lagging = leader == "n3" ? "n2" : "n3";
  net->isolate(lagging, c.ids);
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(
        c, leader, put("key" + std::to_string(i % 7), "value-" + std::to_string(i))));
  auto before = statuses(c, d);
  ASSERT_LT(before[lagging].applied_index(), 10u);
  // Every chunk on its way to the lagging node is recorded; the second one is lost once.
  std::vector<uint64_t> offsets;
  size_t biggest = 0, installs_seen = 0;
  bool dropped = false;
  net->heal();
  net->script = [&](const std::string&, const std::string& to, caf::message& msg) {
    if (to != lagging || !msg.match_elements<pb::InstallSnapshot>())
      return false;
    auto& req = msg.get_as<pb::InstallSnapshot>(0);
    offsets.push_back(req.offset());
    biggest = std::max(biggest, req.data().size());
    installs_seen += req.done();
    if (req.offset() == chunk && !dropped) {
      dropped = true;
      return true;
    }
    return false;
  };
  uint64_t target = before[leader].commit_index();
  ASSERT_TRUE(d.run_until(
      [&] {
        auto st = statuses(c, d);
        return st.count(lagging) && st[lagging].applied_index() >= target;
      },
      3000ms));
  EXPECT_TRUE(dropped);
  EXPECT_GT(installs_seen, 0u);
  EXPECT_LE(biggest, chunk) << "chunks stay within snapshot_chunk_bytes";
  EXPECT_EQ(std::count(offsets.begin(), offsets.end(), 0u), 1) << "never started over";
  EXPECT_EQ(std::count(offsets.begin(), offsets.end(), uint64_t{chunk}), 2)
      << "the lost chunk was sent again";
  EXPECT_GT(c.checker->restores, 0u);
  auto check_data = [&] {
    for (int k = 0; k < 7; ++k) {
      auto r = call<pb::GetResponse>(c, lagging, get("key" + std::to_string(k), true));
      ASSERT_TRUE(r);
      EXPECT_TRUE(r->found()) << k;
      EXPECT_EQ(r->value(), "value-" + std::to_string(33 + (k + 2) % 7)) << k;
    }
  };
  check_data();
  // More writes go to it as entries again, and it restarts from its own snapshot.
  ASSERT_TRUE(call<pb::WriteResponse>(c, leader, put("after", "1")));
  auto restores = c.checker->restores;
  auto chunks_sent = offsets.size();
  c.stop(lagging);
  c.restart(lagging);
  ASSERT_TRUE(d.run_until(
      [&] {
        auto st = statuses(c, d);
        return st.count(lagging) && st[lagging].applied_index() >= target + 1;
      },
      3000ms));
  EXPECT_GT(c.checker->restores, restores) << "restored from its own snapshot at start";
  EXPECT_EQ(offsets.size(), chunks_sent) << "the leader did not send the snapshot again";
  check_data();
  expect_safe(c);
}

// Pre-vote: a follower cut off from the others keeps failing pre-votes instead of raising its
// term, so when it comes back the leader keeps leading (without pre-vote it would come back
// with a higher term and depose it).
TEST_F(ClusterTest, NodeBackFromAPartitionDoesNotDeposeTheLeader) {
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  auto term = statuses(*c, d)[leader].term();
  std::string cut = leader == "n1" ? "n2" : "n1";
  c->net->isolate(cut, c->ids);
  d.advance(3000ms); // ten election timeouts and more
  EXPECT_EQ(statuses(*c, d)[cut].term(), term) << "pre-votes failed, the term stayed";
  c->net->heal();
  d.advance(1000ms);
  auto st = statuses(*c, d);
  EXPECT_EQ(st[leader].role(), "leader");
  EXPECT_EQ(st[leader].term(), term);
  EXPECT_EQ(st[cut].leader_id(), leader);
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put("after", "1")));
  expect_safe(*c);
}

// Without pre-vote the same partition costs the leader its leadership: the test above can fail.
TEST_F(ClusterTest, WithoutPreVoteTheReturningNodeForcesANewTerm) {
  cluster c{sys, 3, 1, nullptr, [](node_config& nc) { nc.pre_vote = false; }};
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  auto term = statuses(c, d)[leader].term();
  std::string cut = leader == "n1" ? "n2" : "n1";
  c.net->isolate(cut, c.ids);
  d.advance(3000ms);
  EXPECT_GT(statuses(c, d)[cut].term(), term);
  c.net->heal();
  d.advance(1000ms);
  EXPECT_GT(statuses(c, d)[leader].term(), term);
  expect_safe(c);
}

// A member's connection that comes through late (its side had given up on it) must not leave
// the member cut off: the node closes a member's older connection once a newer one announces
// itself, so the member's dialing side sees it close and dials anew (a nemesis run once
// stranded a follower for good: it kept its older connection and never dialed again, while
// the leader's peer had lost the newer one). An in-process member is never closed this way.
TEST_F(ClusterTest, ANewerConnectionOfAMemberClosesTheOlderOne) {
  auto c = make(3);
  ASSERT_FALSE(wait_leader(*c).empty());
  auto node = c->nodes.at("n1");
  // Stand-ins for connection actors: each announces "n9" at its other end, as itself.
  auto spawn_conn = [&](bool& down) {
    auto a = sys.spawn([](caf::event_based_actor*) -> caf::behavior { return {[](int) {}}; });
    caf::actor_cast<caf::abstract_actor*>(a)->attach_functor([&down] { down = true; });
    return a;
  };
  bool first_down = false, second_down = false, third_down = false;
  auto first = spawn_conn(first_down);
  auto second = spawn_conn(second_down);
  caf::send_as(first, node, peer_handle_atom::value, std::string{"n9"}, first);
  d.run_until([] { return false; }, 50ms);
  EXPECT_FALSE(first_down) << "the only connection of n9 was closed";
  caf::send_as(second, node, peer_handle_atom::value, std::string{"n9"}, second);
  d.run_until([&] { return first_down; }, 200ms);
  EXPECT_TRUE(first_down) << "n9's older connection stays open beside the newer one";
  EXPECT_FALSE(second_down);
  // The same connection announced again closes nothing.
  caf::send_as(second, node, peer_handle_atom::value, std::string{"n9"}, second);
  d.run_until([] { return false; }, 50ms);
  EXPECT_FALSE(second_down);
  // A connection in the name of n2, whom n1 reaches in-process, closes n2's node: no.
  auto third = spawn_conn(third_down);
  caf::send_as(third, node, peer_handle_atom::value, std::string{"n2"}, third);
  d.run_until([] { return false; }, 200ms);
  EXPECT_EQ(c->exits->count("n2"), 0u) << "a connection's announcement stopped an in-process node";
  for (auto& a : {second, third})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

} // namespace
} // namespace cafraft::test

// Quiescence (node_config::quiesce_after, docs/membership.md): an idle group sends nothing, and
// wakes on what could need it (a client, a Raft message, a lost connection to the leader).
// The core's rules as values, then three nodes under CAF's test scheduler.
#include "cluster_test.hpp"
#include "core_fixture.hpp"

namespace cafraft {
namespace {

using namespace core;
using namespace core::test;
using cafraft::test::put;
using cafraft::test::statuses;

/// Sends of `fx` whose AppendEntries is marked quiesce.
size_t quiesce_marks(const effects& fx) {
  size_t n = 0;
  for (auto i : where<send>(fx))
    if (auto* ae = std::get_if<pb::AppendEntries>(&std::get<send>(fx[i]).msg))
      n += ae->quiesce() ? 1 : 0;
  return n;
}

struct QuiesceLeader : LeaderTest {
  QuiesceLeader() { cfg.quiesce_after = 200ms; }

  /// In office, its no-op held by both followers, then idle until it quiesces.
  void fall_asleep() {
    take_office();
    lead(persisted{3});
    lead(raft_message{ack("n2", 3)});
    lead(raft_message{ack("n3", 3)});
    ticks_until(now + 300ms);
  }

  /// Runs every tick that comes due up to `until`, or until the leader hands over; returns
  /// their effects, in order. `acks`: followers that answer each heartbeat round.
  effects ticks_until(time_point until, std::vector<std::string> acks = {}) {
    effects all;
    while (deadline(r) <= until && where<become>(all).empty()) {
      now = deadline(r);
      for (auto& f : lead(tick{}))
        all.push_back(std::move(f));
      for (auto& id : acks)
        lead(raft_message{ack(id, s.last_index())});
    }
    now = std::max(now, until);
    return all;
  }
};

TEST_F(QuiesceLeader, AnIdleLeaderWhoseFollowersHoldEverythingSendsOneLastMarkedHeartbeat) {
  take_office();
  lead(persisted{3});
  lead(raft_message{ack("n2", 3)});
  lead(raft_message{ack("n3", 3)});
  ASSERT_EQ(s.commit_index, 3u);
  auto before = ticks_until(now + 150ms);
  EXPECT_EQ(where<send>(before).size(), 6u) << "three heartbeat rounds while not yet idle long";
  EXPECT_EQ(quiesce_marks(before), 0u);
  auto fx = ticks_until(now + 100ms);
  EXPECT_EQ(quiesce_marks(fx), 2u) << "one marked heartbeat to each follower";
  EXPECT_TRUE(s.quiesced);
  EXPECT_EQ(deadline(r), time_point::max()) << "no heartbeat, no check-quorum";
  now += 1h;
  EXPECT_TRUE(lead(tick{}).empty()) << "an hour later, still nothing to send";
  // A write wakes it: the entry goes out, heartbeats and check-quorum are due again.
  fx = lead(write_request{7, pb::ENTRY_COMMAND, "x"});
  EXPECT_FALSE(s.quiesced);
  EXPECT_EQ(where<flush_soon>(fx).size(), 1u);
  fx = lead(flush_now{});
  EXPECT_EQ(where<send>(fx).size(), 2u);
  EXPECT_EQ(quiesce_marks(fx), 0u);
  EXPECT_EQ(deadline(r), now + cfg.heartbeat_interval);
}

TEST_F(QuiesceLeader, ALeaderNeverQuiescesWhileAFollowerLacksAnEntry) {
  take_office();
  lead(persisted{3});
  lead(raft_message{ack("n2", 3)}); // n3 never answers
  ASSERT_EQ(s.commit_index, 3u);
  auto fx = ticks_until(now + 2s, {"n2"});
  EXPECT_TRUE(where<become>(fx).empty()) << "n2 keeps it in office";
  EXPECT_EQ(quiesce_marks(fx), 0u) << "n3 would sleep without the no-op, or never hear of it";
  EXPECT_FALSE(s.quiesced);
}

TEST_F(QuiesceLeader, AQuiescedLeaderWakesWhenAConnectionToAFollowerBreaks) {
  fall_asleep();
  ASSERT_TRUE(s.quiesced);
  lead(peer_lost{"n9"}); // not a member
  EXPECT_TRUE(s.quiesced);
  lead(peer_lost{"n3"});
  EXPECT_FALSE(s.quiesced);
  EXPECT_EQ(deadline(r), now + cfg.heartbeat_interval);
  // What was heard before the quiet period does not keep it in office: check-quorum runs on
  // what answers from now on.
  auto fx = ticks_until(now + cfg.election_timeout_max);
  EXPECT_EQ(only<become>(fx).next, role_kind::follower);
}

TEST_F(CoreTest, AQuiescedFollowerStopsItsTimerUntilItsLeaderIsLostOrAClientTurnsUp) {
  follower_role r;
  follower(r, started{});
  auto quiet = append(2, 2, 2, {});
  quiet.set_quiesce(true);
  auto fx = follower(r, raft_message{quiet});
  EXPECT_EQ(where<send>(fx).size(), 1u) << "the marked heartbeat is answered";
  EXPECT_TRUE(s.quiesced);
  EXPECT_EQ(deadline(r), now + cfg.quiesce_backstop) << "only the backstop is left";
  now += 50s;
  EXPECT_TRUE(follower(r, tick{}).empty());
  follower(r, peer_lost{"n3"}); // not the leader
  EXPECT_TRUE(s.quiesced);
  fx = follower(r, peer_lost{"n2"});
  EXPECT_FALSE(s.quiesced);
  EXPECT_TRUE(sent<pb::ReadIndexRequest>(fx, where<send>(fx).at(0)).probe())
      << "it asks the leader whether it is there";
  now = deadline(r);
  EXPECT_EQ(only<become>(follower(r, tick{})).next, role_kind::candidate)
      << "no answer: its leader's process is gone, it campaigns";
  // A marked heartbeat that the log does not match (a stale one, say) stops no timer.
  follower_role r3;
  follower(r3, started{});
  auto mismatched = append(2, 5, 2, {});
  mismatched.set_quiesce(true);
  follower(r3, raft_message{mismatched});
  EXPECT_FALSE(s.quiesced);
  EXPECT_LE(deadline(r3), now + cfg.election_timeout_max);
  // Another follower, quiesced, sent a client away: it starts its timer and asks the leader,
  // whose marked answer (it is there, still idle) puts it back to sleep.
  follower_role r2;
  follower(r2, started{});
  follower(r2, raft_message{quiet});
  fx = follower(r2, wake{});
  EXPECT_EQ(where<send>(fx).size(), 1u);
  EXPECT_LE(deadline(r2), now + cfg.election_timeout_max);
  follower(r2, raft_message{quiet});
  EXPECT_TRUE(s.quiesced);
  // Its backstop: a whole backstop with no word, and it asks again, without campaigning.
  now += cfg.quiesce_backstop;
  fx = follower(r2, tick{});
  EXPECT_TRUE(where<become>(fx).empty());
  ASSERT_EQ(where<send>(fx).size(), 1u);
  EXPECT_TRUE(sent<pb::ReadIndexRequest>(fx, where<send>(fx).at(0)).probe());
  EXPECT_LE(deadline(r2), now + cfg.election_timeout_max);
  // The leader's next message (woken) rearms it as usual.
  follower(r2, raft_message{append(2, 2, 2, {})});
  EXPECT_FALSE(s.quiesced);
}

TEST_F(QuiesceLeader, AQuiescedLeaderAnswersAProbeAsleepAndWakesForAFollowerThatLacksEntries) {
  fall_asleep();
  ASSERT_TRUE(s.quiesced);
  pb::ReadIndexRequest probe;
  probe.set_term(s.term);
  probe.set_node_id("n2");
  probe.set_probe(true);
  auto fx = lead(raft_message{probe});
  EXPECT_EQ(quiesce_marks(fx), 1u) << "here and idle: one marked heartbeat to n2";
  EXPECT_TRUE(s.quiesced);
  auto reject = ack("n3", 3);
  reject.set_success(false);
  lead(raft_message{reject});
  EXPECT_FALSE(s.quiesced) << "n3's log does not match: it needs the leader awake";
}

/// With lease reads: heartbeats, each round acknowledged by both followers, until it quiesces.
void sleep_with_lease(QuiesceLeader& t) {
  t.cfg.lease_reads = true;
  t.take_office();
  t.lead(persisted{3});
  t.lead(raft_message{t.ack("n2", 3)});
  t.lead(raft_message{t.ack("n3", 3)});
  while (!t.s.quiesced) {
    t.now = deadline(t.r);
    auto fx = t.lead(tick{});
    for (auto i : where<send>(fx))
      if (auto* ae = std::get_if<pb::AppendEntries>(&std::get<send>(fx[i]).msg))
        t.lead(raft_message{t.ack(std::get<send>(fx[i]).to, 3, ae->read_round())});
  }
  t.now += 10ms;
}

read_request lease_read(request_id id) {
  return read_request{id, read_query{"k", true}, true};
}

TEST_F(QuiesceLeader, AFreshLeaseStillServesAReadRightAfterQuiescing) {
  sleep_with_lease(*this);
  EXPECT_EQ(where<read_state>(lead(lease_read(5))).size(), 1u)
      << "the lease acknowledged before it fell asleep still holds: answered at once";
}

TEST_F(QuiesceLeader, ALeaderWokenByACampaignServesNoLeaseReadsForTheRestOfItsTerm) {
  sleep_with_lease(*this);
  lead(raft_message{vote_request("n2", 4, 3, 3, true)}); // the sleepers' leases ran out
  EXPECT_FALSE(s.quiesced);
  EXPECT_TRUE(where<read_state>(lead(lease_read(5))).empty())
      << "the voters may grant this campaign while a new lease is acknowledged";
}

TEST_F(QuiesceLeader, AQuiescedLeaderThatStepsDownWakesItsFollowersFirst) {
  fall_asleep();
  ASSERT_TRUE(s.quiesced);
  auto fx = lead(step_down_request{9});
  EXPECT_EQ(where<send>(fx).size(), 2u) << "a heartbeat starts each sleeper's timer";
  EXPECT_EQ(quiesce_marks(fx), 0u);
  EXPECT_EQ(only<become>(fx).next, role_kind::follower);
}

// -- three nodes --------------------------------------------------------------------------------

class Quiescence : public cafraft::test::cluster_test {};

TEST_F(Quiescence, AnIdleClusterSendsNothingAndAWriteOrALostLeaderWakesIt) {
  auto c = std::make_unique<cafraft::test::cluster>(
      sys, 3, 11, nullptr, [](node_config& nc) { nc.quiesce_after = 300ms; });
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put("k", "v1")));
  d.run_until([] { return false; }, 1000ms);
  for (auto& [id, st] : statuses(*c, d))
    EXPECT_TRUE(st.quiesced()) << id;
  auto delivered = c->net->delivered;
  d.run_until([] { return false; }, 50s);
  EXPECT_EQ(c->net->delivered, delivered) << "50 s of an idle group: no message";
  // A write wakes the leader, and its entries wake the followers.
  auto w = c->ask<pb::WriteResponse>(leader, put("k", "v2"), 2s);
  d.run_until([&] { return w->done; }, 2s);
  ASSERT_TRUE(w->done && w->value);
  for (auto& [id, st] : statuses(*c, d))
    EXPECT_FALSE(st.quiesced()) << id;
  d.run_until([] { return false; }, 1000ms); // quiet again
  // The leader's process goes away while the group sleeps: the others notice the broken
  // connections (not a heartbeat: there is none), elect, and take writes.
  c->stop(leader);
  auto next = wait_leader(*c, 3000ms);
  ASSERT_FALSE(next.empty()) << "the quiesced followers never noticed their leader was gone";
  EXPECT_NE(next, leader);
  auto w3 = c->ask<pb::WriteResponse>(next, put("k", "v3"), 2s);
  d.run_until([&] { return w3->done; }, 2s);
  ASSERT_TRUE(w3->done && w3->value);
  EXPECT_GT(c->checker->steps, 0u);
  for (auto& v : c->checker->violations)
    ADD_FAILURE() << v;
}

} // namespace
} // namespace cafraft

// The Raft core as values (runtime/core.hpp): a state and an event in, the effects out, one
// test per rule. Order is part of the answer: a promise (a vote, an acknowledgement) must come
// after the write it depends on, and wait for it.
#include "core_fixture.hpp"

namespace cafraft::core {
namespace {

using namespace test;

// -- the term prelude -------------------------------------------------------------------------

TEST_F(CoreTest, AStaleAppendIsAnsweredWithOurTermAndChangesNothing) {
  follower_role r;
  s.term = 5;
  s.stored_term = 5;
  auto fx = follower(r, raft_message{append(3, 2, 2, {entry(3, 3)})});
  ASSERT_EQ(fx.size(), 1u);
  auto& resp = sent<pb::AppendEntriesResponse>(fx, 0);
  EXPECT_EQ(resp.term(), 5u) << "the stale leader must learn our term to step down (§5.1)";
  EXPECT_FALSE(resp.success());
  EXPECT_EQ(s.last_index(), 2u);
  EXPECT_TRUE(s.leader_id.empty());
}

TEST_F(CoreTest, AStaleSnapshotIsAnsweredWithOurTermIncarnationAndLog) {
  follower_role r;
  s.term = 5;
  s.stored_term = 5;
  s.incarnation = 7;
  pb::InstallSnapshot req;
  req.set_term(4);
  req.set_leader_id("n2");
  req.mutable_meta()->set_index(9);
  auto fx = follower(r, raft_message{req});
  ASSERT_EQ(fx.size(), 1u);
  auto& resp = sent<pb::InstallSnapshotResponse>(fx, 0);
  EXPECT_EQ(resp.term(), 5u);
  EXPECT_EQ(resp.incarnation(), 7u);
  EXPECT_EQ(resp.snapshot_index(), 9u);
  EXPECT_EQ(resp.last_log_index(), 2u);
  EXPECT_FALSE(resp.installed());
  EXPECT_FALSE(r.chunk_pending);
}

TEST_F(CoreTest, AHigherTermIsTakenWithoutAVoteAndWrittenBeforeTheAnswer) {
  follower_role r;
  s.voted_for = "n3";
  s.stored_vote = "n3";
  auto fx = follower(r, raft_message{append(4, 2, 2, {entry(3, 4)})});
  EXPECT_EQ(s.term, 4u);
  EXPECT_TRUE(s.voted_for.empty()) << "a new term starts with no vote (§5.1)";
  EXPECT_EQ(s.leader_id, "n2");
  auto writes = where<persist>(fx);
  auto sends = where<send>(fx);
  ASSERT_EQ(writes.size(), 1u);
  ASSERT_EQ(sends.size(), 1u);
  auto& p = std::get<persist>(fx[writes[0]]);
  ASSERT_TRUE(p.batch.hard_state);
  EXPECT_EQ(p.batch.hard_state->term(), 4u);
  EXPECT_EQ(p.batch.entries.size(), 1u);
  EXPECT_LT(writes[0], sends[0]);
  EXPECT_TRUE(std::get<send>(fx[sends[0]]).after_writes);
  EXPECT_TRUE(sent<pb::AppendEntriesResponse>(fx, sends[0]).success());
  EXPECT_EQ(only<leader_known>(fx).id, "n2");
}

TEST_F(CoreTest, AGrantedPreVoteAnswerRaisesNoTerm) {
  follower_role r;
  pb::RequestVoteResponse late; // from a pre-vote this node asked for as a candidate
  late.set_term(3);
  late.set_voter_id("n2");
  late.set_pre_vote(true);
  late.set_granted(true);
  auto fx = follower(r, raft_message{late});
  EXPECT_EQ(s.term, 2u) << "a grant names the term proposed, not the voter's";
  EXPECT_TRUE(fx.empty());
  late.set_granted(false); // a refusal carries the voter's own term
  fx = follower(r, raft_message{late});
  EXPECT_EQ(s.term, 3u);
  ASSERT_EQ(where<persist>(fx).size(), 1u) << "the new term is written";
}

TEST_F(CoreTest, ACandidateThatACommittedConfigurationRemovedIsToldSo) {
  follower_role r;
  // n3 left at index 3 (committed); its log ends before that entry.
  s.log.push_back(entry(3, 2));
  s.log.back().set_type(pb::ENTRY_CONFIG);
  pb::Configuration c;
  for (auto* id : {"n1", "n2"}) {
    auto* m = c.add_members();
    m->set_id(id);
    m->set_address(std::string{"a"} + id[1]);
  }
  s.log.back().set_data(c.SerializeAsString());
  rules::refresh_config(s);
  s.commit_index = 3;
  auto fx = follower(r, raft_message{vote_request("n3", 3, 2, 2)});
  ASSERT_EQ(fx.size(), 1u);
  auto& resp = sent<pb::RequestVoteResponse>(fx, 0);
  EXPECT_TRUE(resp.removed());
  EXPECT_FALSE(resp.granted());
  EXPECT_EQ(s.term, 2u) << "a removed node's term deposes no one";
}

// -- the follower -----------------------------------------------------------------------------

TEST_F(CoreTest, AVoteIsSentOnlyAfterItIsWritten) {
  follower_role r;
  auto fx = follower(r, raft_message{vote_request("n2", 3, 2, 2)});
  EXPECT_EQ(s.voted_for, "n2");
  auto writes = where<persist>(fx);
  auto sends = where<send>(fx);
  ASSERT_EQ(writes.size(), 1u);
  ASSERT_EQ(sends.size(), 1u);
  auto& hs = std::get<persist>(fx[writes[0]]).batch.hard_state;
  ASSERT_TRUE(hs);
  EXPECT_EQ(hs->term(), 3u);
  EXPECT_EQ(hs->voted_for(), "n2");
  EXPECT_LT(writes[0], sends[0]) << "persist before you promise (thesis §3.8)";
  EXPECT_TRUE(std::get<send>(fx[sends[0]]).after_writes);
  EXPECT_TRUE(sent<pb::RequestVoteResponse>(fx, sends[0]).granted());
  EXPECT_GE(r.timer.deadline, now + cfg.election_timeout_min)
      << "granting a vote resets the timer (§5.2)";
}

TEST_F(CoreTest, OneVotePerTerm) {
  follower_role r;
  follower(r, raft_message{vote_request("n2", 3, 2, 2)});
  auto fx = follower(r, raft_message{vote_request("n3", 3, 2, 2)});
  auto sends = where<send>(fx);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_FALSE(sent<pb::RequestVoteResponse>(fx, sends[0]).granted());
  EXPECT_EQ(s.voted_for, "n2");
  fx = follower(r, raft_message{vote_request("n2", 3, 2, 2)}); // a retry is granted again
  EXPECT_TRUE(sent<pb::RequestVoteResponse>(fx, where<send>(fx).at(0)).granted());
}

TEST_F(CoreTest, NoVoteForALogLessUpToDate) {
  follower_role r;
  auto fx = follower(r, raft_message{vote_request("n2", 3, 5, 1)}); // longer, older last term
  EXPECT_FALSE(sent<pb::RequestVoteResponse>(fx, where<send>(fx).at(0)).granted());
  EXPECT_TRUE(s.voted_for.empty());
}

TEST_F(CoreTest, AnAcknowledgementWaitsForTheEntriesItAcknowledges) {
  follower_role r;
  auto fx = follower(r, raft_message{append(2, 2, 2, {entry(3, 2), entry(4, 2)}, 3)});
  auto writes = where<persist>(fx);
  auto sends = where<send>(fx);
  ASSERT_EQ(writes.size(), 1u);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(std::get<persist>(fx[writes[0]]).batch.entries.size(), 2u);
  EXPECT_LT(writes[0], sends[0]);
  EXPECT_TRUE(std::get<send>(fx[sends[0]]).after_writes);
  auto& resp = sent<pb::AppendEntriesResponse>(fx, sends[0]);
  EXPECT_TRUE(resp.success());
  EXPECT_EQ(resp.last_log_index(), 4u);
  EXPECT_EQ(s.commit_index, 3u);
  auto& a = only<apply>(fx);
  ASSERT_EQ(a.entries.size(), 3u) << "entries 1..3 are committed";
  EXPECT_EQ(a.entries.back().index(), 3u);
  EXPECT_GE(r.timer.deadline, now + cfg.election_timeout_min) << "the leader's word moves it";
}

TEST_F(CoreTest, APreVoteIsRefusedWhileTheLeaderIsRecentAndChangesNothing) {
  follower_role r;
  follower(r, raft_message{append(2, 2, 2, {})}); // n2 leads term 2
  auto fx = follower(r, raft_message{vote_request("n3", 3, 2, 2, true)});
  ASSERT_EQ(fx.size(), 1u);
  EXPECT_FALSE(std::get<send>(fx[0]).after_writes) << "a pre-vote answer depends on no write";
  EXPECT_FALSE(sent<pb::RequestVoteResponse>(fx, 0).granted());
  now += cfg.election_timeout_min;
  fx = follower(r, raft_message{vote_request("n3", 3, 2, 2, true)});
  ASSERT_EQ(fx.size(), 1u);
  auto& resp = sent<pb::RequestVoteResponse>(fx, 0);
  EXPECT_TRUE(resp.granted()) << "the lease ran out";
  EXPECT_EQ(resp.term(), 3u);
  EXPECT_EQ(s.term, 2u) << "a pre-vote changes no term (thesis §9.6)";
  EXPECT_TRUE(s.voted_for.empty());
}

// With lease reads a node that (re)starts may have acknowledged a leader's lease just before:
// it refuses pre-votes for an election timeout, as if it had just heard from a leader.
TEST_F(CoreTest, WithLeaseReadsAStartingFollowerRefusesPreVotesForAnElectionTimeout) {
  cfg.lease_reads = true;
  follower_role r;
  follower(r, started{});
  now += cfg.election_timeout_min - std::chrono::milliseconds{1};
  auto fx = follower(r, raft_message{vote_request("n3", 3, 2, 2, true)});
  EXPECT_FALSE(sent<pb::RequestVoteResponse>(fx, 0).granted())
      << "granted a pre-vote within a lease it may have acknowledged before it started";
  now += std::chrono::milliseconds{1};
  fx = follower(r, raft_message{vote_request("n3", 3, 2, 2, true)});
  EXPECT_TRUE(sent<pb::RequestVoteResponse>(fx, 0).granted());
  // Without lease reads nothing changes: a node that knows no leader grants at once.
  cfg.lease_reads = false;
  follower_role fresh;
  follower(fresh, started{});
  fx = follower(fresh, raft_message{vote_request("n3", 3, 2, 2, true)});
  EXPECT_TRUE(sent<pb::RequestVoteResponse>(fx, 0).granted());
}

// Follower reads (thesis §6.4): one ReadIndexRequest at a time, for the reads that arrived
// before it went out. A read that arrives while it is out waits for the next one: the index the
// leader gives for the first was fixed before that read arrived, and may miss a write
// acknowledged in between.
TEST_F(CoreTest, AFollowerReadNeverTakesAReadIndexAskedForBeforeItArrived) {
  s.cluster_level = features::sessions;
  follower_role r;
  follower(r, raft_message{append(2, 2, 2, {})}); // n2 leads term 2
  auto fx = follower(r, read_request{1, {"a", true}, false});
  ASSERT_EQ(where<send>(fx).size(), 1u);
  auto first = sent<pb::ReadIndexRequest>(fx, where<send>(fx)[0]);
  EXPECT_EQ(std::get<send>(fx[where<send>(fx)[0]]).to, "n2");
  fx = follower(r, read_request{2, {"b", true}, false});
  EXPECT_TRUE(where<send>(fx).empty()) << "a second request while the first is out";
  pb::ReadIndexResponse resp;
  resp.set_term(2);
  resp.set_leader_id("n2");
  resp.set_id(first.id());
  resp.set_granted(true);
  resp.set_index(7);
  fx = follower(r, raft_message{resp});
  auto& answered = only<read_state>(fx);
  EXPECT_EQ(answered.id, 1u) << "read 2 took an index asked for before it arrived";
  EXPECT_EQ(answered.min_index, 7u);
  ASSERT_EQ(where<send>(fx).size(), 1u) << "the waiting read asks anew";
  auto second = sent<pb::ReadIndexRequest>(fx, where<send>(fx)[0]);
  EXPECT_NE(second.id(), first.id());
  // The answer to the first request, again (a duplicate): nothing.
  EXPECT_TRUE(follower(r, raft_message{resp}).empty());
  // A refused answer fails the read; the client asks again.
  resp.set_id(second.id());
  resp.set_granted(false);
  fx = follower(r, raft_message{resp});
  auto& failed = only<reply>(fx);
  EXPECT_EQ(failed.id, 2u);
  EXPECT_EQ(std::get<failure>(failed.value).code, errc::unknown_leader);
}

TEST_F(CoreTest, OnlyVotersThatMayCampaignBecomeCandidates) {
  follower_role r;
  auto fx = follower(r, election_timeout{});
  EXPECT_EQ(only<become>(fx).next, role_kind::candidate);
  s.config.members[0].learner = true;
  fx = follower(r, election_timeout{});
  EXPECT_TRUE(where<become>(fx).empty()) << "a learner never campaigns";
  EXPECT_GT(r.timer.deadline, now) << "it waits another timeout";
  s.config.members[0].learner = false;
  cfg.electable = false;
  fx = follower(r, election_timeout{});
  EXPECT_TRUE(where<become>(fx).empty());
}

TEST_F(CoreTest, AFollowerCampaignsOnceItsDeadlinePassesAndItsLeaderMovesTheDeadline) {
  follower_role r;
  follower(r, started{});
  auto first = r.timer.deadline;
  EXPECT_GE(first, now + cfg.election_timeout_min);
  EXPECT_LE(first, now + cfg.election_timeout_max);
  now = first - 1ms;
  EXPECT_TRUE(follower(r, tick{}).empty()) << "an early tick finds nothing due";
  follower(r, raft_message{append(2, 2, 2, {})}); // the leader's word, 1 ms before
  EXPECT_EQ(r.timer.deadline, now + r.timer.timeout) << "same timeout, from now";
  now = first;
  EXPECT_TRUE(where<become>(follower(r, tick{})).empty());
  now = r.timer.deadline;
  EXPECT_EQ(only<become>(follower(r, tick{})).next, role_kind::candidate);
}

TEST_F(CoreTest, ALowerPriorityWaitsLonger) {
  follower_role r;
  cfg.priority = 0;
  follower(r, started{});
  EXPECT_GE(r.timer.deadline, now + cfg.election_timeout_max)
      << "priority 0 adds the whole spread (node_config::priority)";
}

TEST_F(CoreTest, TimeoutNowOfOurTermStartsAnElectionWithoutPreVote) {
  follower_role r;
  pb::TimeoutNow tn;
  tn.set_term(1); // an old leader's
  tn.set_leader_id("n2");
  EXPECT_TRUE(follower(r, raft_message{tn}).empty());
  tn.set_term(2);
  auto fx = follower(r, raft_message{tn});
  EXPECT_EQ(only<become>(fx).next, role_kind::candidate);
  EXPECT_TRUE(s.campaign_now);
}

TEST_F(CoreTest, ASnapshotIsStoredOneChunkAtATimeAndInstalledAfterItsWrite) {
  follower_role r;
  pb::InstallSnapshot req;
  req.set_term(2);
  req.set_leader_id("n2");
  req.set_done(true);
  auto* meta = req.mutable_meta();
  meta->set_index(10);
  meta->set_term(2);
  meta->set_size(3);
  *meta->add_members() = s.config.to_proto().members(0);
  auto fx = follower(r, raft_message{req});
  auto& chunk = only<store_chunk>(fx);
  EXPECT_TRUE(r.chunk_pending);
  EXPECT_TRUE(where<store_chunk>(follower(r, raft_message{req})).empty())
      << "a second chunk waits for the first";
  fx = follower(r, chunk_stored{req, chunk.resp, 3, true});
  EXPECT_EQ(s.snapshot_index, 10u);
  EXPECT_EQ(s.commit_index, 10u);
  auto writes = where<persist>(fx);
  auto sends = where<send>(fx);
  auto restores = where<restore>(fx);
  ASSERT_EQ(writes.size(), 1u);
  ASSERT_EQ(sends.size(), 1u);
  ASSERT_EQ(restores.size(), 1u);
  EXPECT_TRUE(std::get<persist>(fx[writes[0]]).batch.snapshot);
  EXPECT_LT(writes[0], sends[0]);
  EXPECT_LT(writes[0], restores[0]) << "the state machine reads a snapshot storage installed";
  EXPECT_TRUE(sent<pb::InstallSnapshotResponse>(fx, sends[0]).installed());
}

// -- the candidate ----------------------------------------------------------------------------

TEST_F(CoreTest, APreVoteAsksForTheNextTermAndChangesNothing) {
  candidate_role r;
  auto fx = candidate(r, started{});
  EXPECT_EQ(s.term, 2u);
  EXPECT_TRUE(where<persist>(fx).empty());
  auto sends = where<send>(fx);
  ASSERT_EQ(sends.size(), 2u) << "one request per other voter";
  for (auto i : sends) {
    auto& req = sent<pb::RequestVote>(fx, i);
    EXPECT_TRUE(req.pre_vote());
    EXPECT_EQ(req.term(), 3u);
    EXPECT_EQ(req.last_log_index(), 2u);
  }
}

TEST_F(CoreTest, ACandidateAsksForVotesOnlyAfterItsOwnIsWrittenAndWinsWithAMajority) {
  candidate_role r;
  candidate(r, started{});
  pb::RequestVoteResponse pre;
  pre.set_term(3);
  pre.set_voter_id("n2");
  pre.set_pre_vote(true);
  pre.set_granted(true);
  auto fx = candidate(r, raft_message{pre});
  EXPECT_EQ(s.term, 3u) << "won the pre-vote: the election starts";
  EXPECT_EQ(s.voted_for, "n1");
  auto writes = where<persist>(fx);
  auto sends = where<send>(fx);
  ASSERT_EQ(writes.size(), 1u);
  ASSERT_EQ(sends.size(), 2u);
  auto& p = std::get<persist>(fx[writes[0]]);
  EXPECT_EQ(p.batch.hard_state->voted_for(), "n1");
  EXPECT_NE(p.notify, 0u);
  for (auto i : sends) {
    EXPECT_LT(writes[0], i);
    EXPECT_TRUE(std::get<send>(fx[i]).after_writes);
    EXPECT_FALSE(sent<pb::RequestVote>(fx, i).pre_vote());
  }
  pb::RequestVoteResponse vote;
  vote.set_term(3);
  vote.set_voter_id("n2");
  vote.set_granted(true);
  EXPECT_TRUE(candidate(r, raft_message{vote}).empty())
      << "votes count only once our own vote is durable (no answer can come before)";
  EXPECT_TRUE(candidate(r, persisted{p.notify}).empty()) << "one vote of three";
  fx = candidate(r, raft_message{vote});
  EXPECT_EQ(only<become>(fx).next, role_kind::leader);
}

TEST_F(CoreTest, ACandidateFollowsALeaderOfItsTermAndStepsDownForAHigherOne) {
  candidate_role r;
  cfg.pre_vote = false;
  candidate(r, started{});
  ASSERT_EQ(s.term, 3u);
  auto fx = candidate(r, raft_message{append(3, 2, 2, {})});
  EXPECT_EQ(only<become>(fx).next, role_kind::follower);
  EXPECT_TRUE(only<become>(fx).redispatch) << "the follower answers the leader";
  pb::AppendEntriesResponse resp;
  resp.set_term(5);
  fx = candidate(r, raft_message{resp});
  EXPECT_EQ(s.term, 5u);
  EXPECT_FALSE(only<become>(fx).redispatch);
  fx = candidate(r, raft_message{append(4, 2, 2, {})});
  EXPECT_TRUE(where<become>(fx).empty()) << "a stale leader is answered, not followed";
  EXPECT_EQ(sent<pb::AppendEntriesResponse>(fx, 0).term(), 5u);
}

TEST_F(CoreTest, ACandidateToldItWasRemovedStopsOnceThatIsWritten) {
  candidate_role r;
  candidate(r, started{});
  pb::RequestVoteResponse resp;
  resp.set_term(9);
  resp.set_voter_id("n2");
  resp.set_removed(true);
  auto fx = candidate(r, raft_message{resp});
  EXPECT_TRUE(s.removed);
  EXPECT_EQ(s.term, 2u) << "the removal is not a term to follow";
  auto writes = where<persist>(fx);
  auto stops = where<stop_removed>(fx);
  ASSERT_EQ(writes.size(), 1u);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_TRUE(std::get<persist>(fx[writes[0]]).batch.hard_state->removed());
  EXPECT_LT(writes[0], stops[0]);
}

// -- the leader -------------------------------------------------------------------------------

TEST_F(LeaderTest, ANewLeaderWritesItsNoOpWhileItSendsIt) {
  auto fx = take_office();
  EXPECT_EQ(s.last_index(), 3u);
  EXPECT_EQ(s.leader_id, "n1");
  auto sends = where<send>(fx);
  ASSERT_EQ(sends.size(), 2u);
  for (auto i : sends)
    EXPECT_FALSE(std::get<send>(fx[i]).after_writes)
        << "followers get the entries while the leader writes them (thesis §10.2.1)";
  auto& p = only<persist>(fx);
  ASSERT_EQ(p.batch.entries.size(), 1u);
  EXPECT_EQ(p.batch.entries[0].type(), pb::ENTRY_NOOP);
  EXPECT_EQ(p.notify, 3u);
}

TEST_F(LeaderTest, AnEntryOfAnOlderTermIsNeverCommittedByCounting) {
  take_office();
  lead(persisted{3});
  auto fx = lead(raft_message{ack("n2", 2)});
  EXPECT_EQ(s.commit_index, 0u) << "Figure 8: index 2 is of term 2, a majority holds it";
  EXPECT_TRUE(where<apply>(fx).empty());
  fx = lead(raft_message{ack("n2", 3)});
  EXPECT_EQ(s.commit_index, 3u) << "our no-op commits, and everything before it";
  EXPECT_EQ(only<apply>(fx).entries.size(), 3u);
}

TEST_F(LeaderTest, TheLeaderCountsItselfOnlyOnceItsEntriesAreDurable) {
  take_office();
  lead(raft_message{ack("n2", 3)});
  EXPECT_EQ(s.commit_index, 0u) << "n2 and an unwritten leader are not a majority";
  lead(persisted{3});
  EXPECT_EQ(s.commit_index, 3u);
}

TEST_F(LeaderTest, AWriteIsAnsweredWithItsResultOnceApplied) {
  take_office();
  lead(persisted{3});
  lead(raft_message{ack("n2", 3)});
  auto fx = lead(write_request{7, pb::ENTRY_COMMAND, "cmd"});
  EXPECT_EQ(where<flush_soon>(fx).size(), 1u) << "proposals that arrive meanwhile share a flush";
  EXPECT_EQ(s.last_index(), 4u);
  lead(flush_now{});
  lead(persisted{4});
  fx = lead(raft_message{ack("n3", 4)});
  EXPECT_EQ(s.commit_index, 4u);
  ASSERT_TRUE(only<apply>(fx).report) << "the leader wants the results";
  EXPECT_TRUE(where<reply>(fx).empty()) << "answered after apply, not at commit";
  fx = lead(applied{4, {"result"}, false});
  auto* resp = reply_to<pb::WriteResponse>(fx, 7);
  ASSERT_NE(resp, nullptr);
  EXPECT_EQ(resp->index(), 4u);
  EXPECT_EQ(resp->term(), 3u);
  EXPECT_EQ(resp->result(), "result");
}

TEST_F(LeaderTest, AReadWaitsForTheNoOpAndAMajorityThatConfirmsTheLeadership) {
  take_office();
  auto fx = lead(read_request{9, {"k", true}, false});
  EXPECT_TRUE(where<read_state>(fx).empty());
  fx = lead(flush_now{});
  uint64_t round = 0;
  for (auto i : where<send>(fx))
    round = std::max(round, sent<pb::AppendEntries>(fx, i).read_round());
  ASSERT_GT(round, 0u) << "the read's round goes out with the heartbeat";
  fx = lead(raft_message{ack("n2", 3, round)});
  EXPECT_TRUE(where<read_state>(fx).empty())
      << "confirmed by a majority, but the no-op is not committed: the commit index may lag";
  fx = lead(persisted{3});
  ASSERT_EQ(s.commit_index, 3u);
  auto& rd = only<read_state>(fx);
  EXPECT_EQ(rd.id, 9u);
  EXPECT_EQ(rd.query.bytes, "k");
  EXPECT_GE(rd.min_index, 3u) << "served from a state that includes the no-op";
}

TEST_F(LeaderTest, AReadIsServedOnlyOnceAMajorityConfirmedTheLeadershipAfterItArrived) {
  take_office();
  lead(persisted{3});
  lead(raft_message{ack("n2", 3)});
  ASSERT_EQ(s.commit_index, 3u);
  lead(read_request{9, {"k", true}, false});
  auto fx = lead(flush_now{});
  uint64_t round = 0;
  for (auto i : where<send>(fx))
    round = std::max(round, sent<pb::AppendEntries>(fx, i).read_round());
  fx = lead(raft_message{ack("n2", 3, round - 1)}); // an answer to an earlier heartbeat
  EXPECT_TRUE(where<read_state>(fx).empty())
      << "a deposed leader that does not know it yet would serve a stale value";
  fx = lead(raft_message{ack("n3", 3, round)});
  EXPECT_EQ(only<read_state>(fx).id, 9u);
}

TEST_F(LeaderTest, OneConfigurationChangeAtATimeAndOnlyAfterTheNoOpCommits) {
  take_office();
  change_request join{11, pb::JoinRequest{}, {}};
  join.join->set_id("n4");
  join.join->set_address("a4");
  join.join->set_incarnation(5);
  auto fx = lead(join);
  EXPECT_EQ(s.last_index(), 3u) << "no change before an entry of this term commits (thesis §4.1)";
  fx = lead(change_request{12, std::nullopt, {}});
  auto* busy = reply_to<failure>(fx, 12);
  ASSERT_NE(busy, nullptr);
  EXPECT_EQ(busy->code, errc::config_change_in_progress);
  lead(persisted{3});
  fx = lead(raft_message{ack("n2", 3)});
  EXPECT_EQ(s.last_index(), 4u) << "the join is appended once the no-op commits";
  ASSERT_TRUE(s.config.find("n4"));
  EXPECT_TRUE(s.config.find("n4")->learner) << "a new member starts as a learner";
  EXPECT_EQ(s.config.voters(), 3u);
}

TEST_F(LeaderTest, SteppingDownAnswersEveryRequestAndWritesTheLogFirst) {
  take_office();
  lead(write_request{7, pb::ENTRY_COMMAND, "cmd"}); // index 4, not flushed yet
  pb::AppendEntriesResponse higher = ack("n2", 0);
  higher.set_term(5);
  higher.set_success(false);
  auto fx = lead(raft_message{higher});
  EXPECT_EQ(s.term, 5u);
  auto* lost = reply_to<failure>(fx, 7);
  ASSERT_NE(lost, nullptr);
  EXPECT_EQ(lost->code, errc::leadership_lost) << "indefinite: the next leader may commit it";
  auto writes = where<persist>(fx);
  auto hand = where<become>(fx);
  ASSERT_EQ(writes.size(), 1u);
  ASSERT_EQ(hand.size(), 1u);
  EXPECT_EQ(std::get<persist>(fx[writes[0]]).batch.entries.back().index(), 4u);
  EXPECT_LT(writes[0], hand[0]) << "the log reaches storage before the next role writes";
  EXPECT_FALSE(std::get<become>(fx[hand[0]]).redispatch);
}

TEST_F(LeaderTest, AVoteRequestOfAHigherTermGoesOnToTheFollower) {
  take_office();
  auto fx = lead(raft_message{vote_request("n2", 4, 3, 3)});
  EXPECT_EQ(s.term, 4u);
  EXPECT_TRUE(only<become>(fx).redispatch) << "the follower decides the vote";
  EXPECT_TRUE(where<send>(fx).empty());
}

TEST_F(LeaderTest, APreVoteNeverDeposesALeader) {
  take_office();
  auto fx = lead(raft_message{vote_request("n2", 4, 3, 3, true)});
  EXPECT_EQ(s.term, 3u);
  EXPECT_TRUE(where<become>(fx).empty());
  auto& resp = sent<pb::RequestVoteResponse>(fx, where<send>(fx).at(0));
  EXPECT_FALSE(resp.granted());
  EXPECT_EQ(resp.term(), 3u);
}

TEST_F(LeaderTest, CheckQuorumStepsDownALeaderThatNoMajorityHeard) {
  take_office();
  lead(raft_message{ack("n2", 3)});
  EXPECT_TRUE(where<become>(lead(quorum_check{})).empty()) << "n2 and n1 are a majority";
  auto fx = lead(quorum_check{});
  EXPECT_EQ(only<become>(fx).next, role_kind::follower) << "no one answered this period";
  EXPECT_EQ(s.term, 3u) << "the term stays: no vote was cast";
}

TEST_F(LeaderTest, TicksBringHeartbeatsAtTheIntervalAndCheckQuorumAtItsDeadline) {
  take_office();
  EXPECT_EQ(deadline(r), now + cfg.heartbeat_interval);
  EXPECT_TRUE(lead(tick{}).empty()) << "nothing due yet";
  now += cfg.heartbeat_interval;
  auto fx = lead(tick{});
  EXPECT_EQ(where<send>(fx).size(), 2u) << "a heartbeat to each follower";
  lead(raft_message{ack("n2", 3)});
  now += cfg.election_timeout_max;
  EXPECT_TRUE(where<become>(lead(tick{})).empty()) << "n2 answered this period";
  now += cfg.election_timeout_max;
  EXPECT_EQ(only<become>(lead(tick{})).next, role_kind::follower) << "no one answered since";
}

TEST_F(LeaderTest, ALeaderThatStepsDownAtATickSendsNoLastHeartbeat) {
  take_office();
  lead(tick{});                    // nothing due
  now += cfg.election_timeout_max; // heartbeat and check-quorum fall due together
  lead(quorum_check{});            // the first period: the followers count as heard
  auto fx = lead(tick{});
  EXPECT_EQ(only<become>(fx).next, role_kind::follower);
  EXPECT_TRUE(where<send>(fx).empty())
      << "a heartbeat now would hold the others back while this node campaigns again";
}

TEST_F(LeaderTest, ATransferSendsTimeoutNowOnceTheTargetHasEveryEntry) {
  take_office();
  auto fx = lead(transfer_request{21, "n2"});
  ASSERT_TRUE(r.pending_transfer);
  EXPECT_EQ(r.pending_transfer->deadline, now + cfg.election_timeout_max);
  for (auto i : where<send>(fx))
    EXPECT_FALSE(std::holds_alternative<pb::TimeoutNow>(std::get<send>(fx[i]).msg));
  EXPECT_EQ(reply_to<failure>(lead(write_request{22, pb::ENTRY_COMMAND, "x"}), 22)->code,
            errc::unknown_leader)
      << "no new entries while the leadership moves (thesis §3.10)";
  fx = lead(raft_message{ack("n2", 3)});
  auto sends = where<send>(fx);
  ASSERT_FALSE(sends.empty());
  auto& tn = std::get<send>(fx[sends.back()]);
  EXPECT_EQ(tn.to, "n2");
  EXPECT_TRUE(std::holds_alternative<pb::TimeoutNow>(tn.msg));
  fx = lead(raft_message{vote_request("n2", 4, 3, 3)});
  auto* info = reply_to<pb::LeaderInfo>(fx, 21);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->id(), "n2");
}

// -- invariants -------------------------------------------------------------------------------

TEST_F(CoreTest, TheInvariantsNameWhatIsWrong) {
  EXPECT_EQ(violation(s, role_kind::follower), "");
  auto bad = s;
  bad.commit_index = 5;
  EXPECT_NE(violation(bad, role_kind::follower).find("beyond the last entry"), std::string::npos);
  bad = s;
  bad.log[1].set_index(7);
  EXPECT_NE(violation(bad, role_kind::follower).find("gaps"), std::string::npos);
  bad = s;
  bad.term = 1;
  EXPECT_NE(violation(bad, role_kind::follower).find("after the node's term"), std::string::npos);
  EXPECT_NE(violation(s, role_kind::leader).find("names no one"), std::string::npos);
  EXPECT_EQ(violation(s, role_kind::leader, false), "") << "not while it hands over";

  s.voted_for = "n2";
  s.commit_index = 2;
  auto before = before_step::of(s);
  auto after = s;
  EXPECT_EQ(step_violation(before, after), "");
  after.voted_for = "n3";
  EXPECT_NE(step_violation(before, after).find("vote of term 2 changed"), std::string::npos);
  after = s;
  after.term = 1;
  EXPECT_NE(step_violation(before, after).find("term went down"), std::string::npos);
  after = s;
  after.commit_index = 1;
  EXPECT_NE(step_violation(before, after).find("commit index went down"), std::string::npos);
  after = s;
  after.log[1].set_term(3);
  EXPECT_NE(step_violation(before, after).find("committed entry 2 changed"), std::string::npos);
  after = s;
  after.log.pop_back();
  EXPECT_NE(step_violation(before, after).find("left the log"), std::string::npos);
}

TEST_F(CoreTest, AStepThatBreaksAnInvariantAborts) {
  follower_role r;
  s.commit_index = 2;
  s.apply_sent = 2;
  // A leader's AppendEntries that would cut committed entries: the core must never do it. A
  // state that claims more is committed than the log holds is the simplest way to see the
  // check fire.
  EXPECT_DEATH(
      {
        s.commit_index = 9;
        follower(r, election_timeout{});
      },
      "broke an invariant");
}

TEST_F(LeaderTest, ATransferThatDoesNotCompleteInAnElectionTimeoutFailsAndWritesGoOn) {
  cfg.check_quorum = false; // no one answers here: check-quorum would depose it first
  take_office();
  lead(transfer_request{21, "n2"});
  now += cfg.election_timeout_max;
  auto fx = lead(tick{});
  auto* timeout = reply_to<failure>(fx, 21);
  ASSERT_NE(timeout, nullptr);
  EXPECT_EQ(timeout->code, errc::timeout);
  EXPECT_TRUE(where<reply>(lead(write_request{22, pb::ENTRY_COMMAND, "x"})).empty())
      << "taken: the leader takes writes again";
}

} // namespace
} // namespace cafraft::core

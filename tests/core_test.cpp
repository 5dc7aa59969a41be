// The Raft core as values (runtime/core.hpp): a state and an event in, the effects out, one
// test per rule. Order is part of the answer: a promise (a vote, an acknowledgement) must come
// after the write it depends on, and wait for it.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include "runtime/core.hpp"
#include "runtime/rules.hpp"

namespace cafraft::core {
namespace {

using namespace std::chrono_literals;

pb::LogEntry entry(uint64_t index, uint64_t term) {
  pb::LogEntry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(pb::ENTRY_COMMAND);
  return e;
}

/// Where effects of type T are in `fx`.
template <class T> std::vector<size_t> where(const effects& fx) {
  std::vector<size_t> at;
  for (size_t i = 0; i < fx.size(); ++i)
    if (std::holds_alternative<T>(fx[i]))
      at.push_back(i);
  return at;
}

template <class T> const T& only(const effects& fx) {
  auto at = where<T>(fx);
  EXPECT_EQ(at.size(), 1u) << "expected exactly one effect of this kind";
  return std::get<T>(fx.at(at.at(0)));
}

/// The message of the send at `fx[i]`, of type M.
template <class M> const M& sent(const effects& fx, size_t i) {
  return std::get<M>(std::get<send>(fx.at(i)).msg);
}

/// A node of a three-voter cluster {n1, n2, n3}, in term 2, whose log holds (1,1) (2,2).
struct CoreTest : ::testing::Test {
  node_config cfg;
  spdlog::logger log{"core-test"}; // no sinks: the core's log lines go nowhere
  time_point now{1s};
  raft_state s;

  CoreTest() {
    cfg.id = "n1";
    s.id = "n1";
    s.term = 2;
    s.stored_term = 2;
    s.base_config.members = {{"n1", "a1"}, {"n2", "a2"}, {"n3", "a3"}};
    s.config = s.base_config;
    s.was_member = true;
    s.log = {entry(1, 1), entry(2, 2)};
  }

  env e() { return env{cfg, log, now}; }

  effects follower(follower_role& r, event ev) { return step_follower(s, r, e(), ev); }
  effects candidate(candidate_role& r, event ev) { return step_candidate(s, r, e(), ev); }

  pb::RequestVote vote_request(const std::string& from, uint64_t term, uint64_t last_index,
                               uint64_t last_term, bool pre_vote = false) {
    pb::RequestVote req;
    req.set_term(term);
    req.set_candidate_id(from);
    req.set_last_log_index(last_index);
    req.set_last_log_term(last_term);
    req.set_pre_vote(pre_vote);
    return req;
  }

  pb::AppendEntries append(uint64_t term, uint64_t prev_index, uint64_t prev_term,
                           std::vector<pb::LogEntry> entries, uint64_t commit = 0) {
    pb::AppendEntries req;
    req.set_term(term);
    req.set_leader_id("n2");
    req.set_prev_log_index(prev_index);
    req.set_prev_log_term(prev_term);
    for (auto& x : entries)
      *req.add_entries() = x;
    req.set_leader_commit(commit);
    return req;
  }
};

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
  EXPECT_TRUE(only<arm_election_timer>(fx).fresh) << "granting a vote resets the timer (§5.2)";
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
  EXPECT_FALSE(only<arm_election_timer>(fx).fresh) << "the leader's word moves the deadline";
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

TEST_F(CoreTest, OnlyVotersThatMayCampaignBecomeCandidates) {
  follower_role r;
  auto fx = follower(r, election_timeout{});
  EXPECT_EQ(only<become>(fx).next, role_kind::candidate);
  s.config.members[0].learner = true;
  fx = follower(r, election_timeout{});
  EXPECT_TRUE(where<become>(fx).empty()) << "a learner never campaigns";
  EXPECT_TRUE(only<arm_election_timer>(fx).fresh);
  s.config.members[0].learner = false;
  cfg.electable = false;
  fx = follower(r, election_timeout{});
  EXPECT_TRUE(where<become>(fx).empty());
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

} // namespace
} // namespace cafraft::core

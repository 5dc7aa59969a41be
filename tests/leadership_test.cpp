// Pre-vote (thesis §9.6) and check-quorum: the rules. The actor-level behaviour (a node that
// comes back from a partition does not depose the leader; a leader cut off steps down) is in
// tests/actor_test.cpp.
#include <gtest/gtest.h>

#include <cafraft/runtime/replication.hpp>
#include <cafraft/runtime/rules.hpp>

namespace cafraft {
namespace {

raft_state voter(uint64_t term, uint64_t last_index, uint64_t last_term) {
  raft_state s;
  s.id = "n2";
  s.term = term;
  for (uint64_t i = 1; i <= last_index; ++i) {
    pb::LogEntry e;
    e.set_index(i);
    e.set_term(i == last_index ? last_term : 1);
    s.log.push_back(e);
  }
  s.config.members = {{"n1", "a1"}, {"n2", "a2"}, {"n3", "a3"}};
  s.base_config = s.config;
  return s;
}

pb::RequestVote pre_vote(uint64_t term, uint64_t last_index, uint64_t last_term) {
  pb::RequestVote req;
  req.set_term(term);
  req.set_candidate_id("n3");
  req.set_last_log_index(last_index);
  req.set_last_log_term(last_term);
  req.set_pre_vote(true);
  return req;
}

TEST(PreVote, GrantedForTheNextTermWithAnUpToDateLogAndNoLeaderHeard) {
  auto s = voter(4, 5, 4);
  auto before = s;
  auto resp = rules::decide_pre_vote(s, pre_vote(5, 5, 4), false);
  EXPECT_TRUE(resp.granted());
  EXPECT_TRUE(resp.pre_vote());
  EXPECT_EQ(resp.term(), 5u) << "a grant names the term it is for";
  EXPECT_EQ(s.term, before.term) << "a pre-vote changes nothing";
  EXPECT_EQ(s.voted_for, before.voted_for);
}

TEST(PreVote, RefusedWhileALeaderWasHeardRecently) {
  auto s = voter(4, 5, 4);
  auto resp = rules::decide_pre_vote(s, pre_vote(5, 5, 4), true);
  EXPECT_FALSE(resp.granted());
  EXPECT_EQ(resp.term(), 4u) << "a refusal tells our term";
}

TEST(PreVote, RefusedForAStaleLogAnOldTermOrWhileResyncing) {
  auto s = voter(4, 5, 4);
  EXPECT_FALSE(rules::decide_pre_vote(s, pre_vote(5, 5, 3), false).granted()) << "older last term";
  EXPECT_FALSE(rules::decide_pre_vote(s, pre_vote(5, 4, 4), false).granted()) << "shorter log";
  EXPECT_FALSE(rules::decide_pre_vote(s, pre_vote(3, 5, 4), false).granted()) << "older term";
  s.leader_id = "n1";
  EXPECT_FALSE(rules::decide_pre_vote(s, pre_vote(4, 5, 4), false).granted())
      << "our own term has a leader";
  s.leader_id.clear();
  s.voted_for = "n1";
  EXPECT_FALSE(rules::decide_pre_vote(s, pre_vote(4, 5, 4), false).granted())
      << "we voted for another in that term";
  s.voted_for.clear();
  EXPECT_TRUE(rules::decide_pre_vote(s, pre_vote(4, 5, 4), false).granted());
  s.resyncing = true;
  EXPECT_FALSE(rules::decide_pre_vote(s, pre_vote(5, 5, 4), false).granted());
}

TEST(CheckQuorum, ActiveOnlyWhenAMajorityAnsweredInThePeriod) {
  auto s = voter(2, 3, 2);
  s.id = "n1";
  replication repl{s, replication_limits{}};
  EXPECT_FALSE(repl.quorum_active()) << "only the leader itself";
  pb::AppendEntriesResponse resp;
  resp.set_term(2);
  resp.set_follower_id("n2");
  resp.set_success(false); // any answer shows the follower is there
  resp.set_rejected_index(3);
  resp.set_reject_hint(2);
  repl.on_response(resp);
  EXPECT_TRUE(repl.quorum_active());
  EXPECT_FALSE(repl.quorum_active()) << "each period starts afresh";
  resp.set_term(1);
  repl.on_response(resp);
  EXPECT_FALSE(repl.quorum_active()) << "an answer of another term does not count";
}

} // namespace
} // namespace cafraft

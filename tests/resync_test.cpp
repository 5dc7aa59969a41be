// A node whose damaged log was discarded (durable_options::discard_corrupt_log) may have
// acknowledged entries it no longer has: it must not vote or count itself up to date until it
// holds the log the leader had when they first spoke again.
#include <gtest/gtest.h>

#include <cafraft/runtime/raft_state.hpp>
#include <cafraft/runtime/rules.hpp>

namespace cafraft {
namespace {

raft_state resyncing_node() {
  raft_state s;
  s.id = "n3";
  s.term = 7;
  s.stored_term = 7;
  s.config.members = {{"n1", "a1"}, {"n2", "a2"}, {"n3", "a3"}};
  s.base_config = s.config;
  s.resyncing = true;
  s.stored_resyncing = true;
  return s;
}

pb::AppendEntries from_leader(uint64_t prev, uint64_t count, uint64_t leader_last) {
  pb::AppendEntries req;
  req.set_term(7);
  req.set_leader_id("n1");
  req.set_prev_log_index(prev);
  req.set_prev_log_term(prev == 0 ? 0 : 7);
  for (uint64_t i = prev + 1; i <= prev + count; ++i) {
    auto e = req.add_entries();
    e->set_index(i);
    e->set_term(7);
  }
  req.set_leader_last_index(leader_last);
  return req;
}

TEST(Resync, NoVoteForAnyCandidateWhileResyncing) {
  auto s = resyncing_node();
  pb::RequestVote req;
  req.set_term(7);
  req.set_candidate_id("n2");
  req.set_last_log_index(100);
  req.set_last_log_term(7);
  EXPECT_FALSE(rules::decide_vote(s, req).granted());
  EXPECT_TRUE(s.voted_for.empty());
}

TEST(Resync, VotesAgainOnceItHoldsTheLeadersLogAndWritesThatDown) {
  auto s = resyncing_node();
  // The leader had 5 entries at first contact; 3 arrive first, then 2 more.
  auto fx = rules::accept_append(s, from_leader(0, 3, 5));
  EXPECT_TRUE(fx.response.success());
  EXPECT_TRUE(s.resyncing) << "3 of 5 entries is not caught up";
  EXPECT_EQ(s.resync_target, 5u);
  // Entries the leader appended meanwhile do not move the target.
  rules::accept_append(s, from_leader(3, 2, 9));
  EXPECT_FALSE(s.resyncing);
  auto hs = rules::take_hard_state(s);
  ASSERT_TRUE(hs) << "the end of the resync must reach storage";
  EXPECT_FALSE(hs->resyncing());
  pb::RequestVote req;
  req.set_term(7);
  req.set_candidate_id("n2");
  req.set_last_log_index(9);
  req.set_last_log_term(7);
  EXPECT_TRUE(rules::decide_vote(s, req).granted());
}

TEST(Resync, ARejectedAppendDoesNotEndIt) {
  auto s = resyncing_node();
  auto fx = rules::accept_append(s, from_leader(4, 1, 5)); // gap: the log is empty
  EXPECT_FALSE(fx.response.success());
  EXPECT_TRUE(s.resyncing);
}

} // namespace
} // namespace cafraft

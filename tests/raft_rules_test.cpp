// Rules a reviewer checks against Raft's safety arguments, as plain values (runtime/rules.hpp):
// single-server membership changes one at a time (thesis §4.1), and what a follower's commit
// index may do when the leader's messages arrive out of order (Figure 2).
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <cafraft/runtime/raft_state.hpp>
#include <cafraft/runtime/rules.hpp>

namespace cafraft {
namespace {

pb::LogEntry entry(uint64_t index, uint64_t term, pb::EntryType type = pb::ENTRY_COMMAND) {
  pb::LogEntry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(type);
  return e;
}

// A leader of term 3 whose log holds the initial configuration (index 1, term 1), a command of
// term 2, and its own no-op (index 3, term 3).
raft_state leader_of_term_3() {
  raft_state s;
  s.id = "n1";
  s.term = 3;
  s.base_config.members = {{"n1", "a1"}, {"n2", "a2"}, {"n3", "a3"}};
  rules::append_config(s, s.base_config.members); // index 1, written by the first leader
  s.log.back().set_term(1);
  s.log.push_back(entry(2, 2));
  s.log.push_back(entry(3, 3, pb::ENTRY_NOOP));
  return s;
}

TEST(MembershipRules, NoChangeBeforeAnEntryOfTheLeadersOwnTermIsCommitted) {
  auto s = leader_of_term_3();
  s.commit_index = 2; // the earlier configuration is committed, our no-op (3) is not
  EXPECT_FALSE(rules::config_change_allowed(s, 3))
      << "a new leader changed the configuration before its own no-op committed (thesis §4.1)";
  s.commit_index = 3;
  EXPECT_TRUE(rules::config_change_allowed(s, 3));
  EXPECT_FALSE(rules::config_change_allowed(s, 0)) << "no entry of the leader's term at all";
}

// Two single-server changes in flight at once can produce disjoint majorities: {n1,n2,n3} plus
// n4 uncommitted, then n5 on top, is a configuration of five whose majority (3) need not
// overlap one of the first (2 of 3).
TEST(MembershipRules, AtMostOneUncommittedConfigurationChangeAtATime) {
  auto s = leader_of_term_3();
  s.commit_index = 3;
  ASSERT_TRUE(rules::config_change_allowed(s, 3));
  auto next = s.config.members;
  next.push_back(member{"n4", "a4"});
  auto& added = rules::append_config(s, next);
  ASSERT_EQ(added.index(), 4u);
  ASSERT_EQ(s.config.index, 4u) << "a configuration is in effect once appended";
  EXPECT_FALSE(rules::config_change_allowed(s, 3))
      << "a second change was allowed while the first (index 4) is uncommitted";
  s.commit_index = 4;
  EXPECT_TRUE(rules::config_change_allowed(s, 3)) << "the first change committed: the next may go";
}

TEST(MembershipRules, AFollowerThatCutAnUncommittedChangeFallsBackToTheOneBefore) {
  auto s = leader_of_term_3();
  s.id = "n2";
  auto next = s.config.members;
  next.push_back(member{"n4", "a4"});
  rules::append_config(s, next); // index 4, from a leader that lost its leadership
  ASSERT_TRUE(s.config.is_member("n4"));
  pb::AppendEntries req; // the new leader's log has its own no-op at 4
  req.set_term(4);
  req.set_leader_id("n3");
  req.set_prev_log_index(3);
  req.set_prev_log_term(3);
  *req.add_entries() = entry(4, 4, pb::ENTRY_NOOP);
  s.term = 4;
  auto fx = rules::accept_append(s, req);
  ASSERT_TRUE(fx.response.success());
  EXPECT_EQ(fx.truncated_from, 4u);
  EXPECT_FALSE(s.config.is_member("n4")) << "the configuration of a cut entry stayed in effect";
  EXPECT_EQ(s.config.index, 1u);
}

// Figure 2, AppendEntries rule 5, with the network reordering the leader's messages: an
// AppendEntries sent before the follower learned a higher commit index arrives after it. The
// commit index never goes down (what was handed to the state machine stays applied).
TEST(FollowerCommit, AReorderedAppendEntriesNeverLowersTheCommitIndex) {
  raft_state s;
  s.id = "n2";
  s.term = 2;
  s.config.members = {{"n1", "a1"}, {"n2", "a2"}, {"n3", "a3"}};
  s.base_config = s.config;
  auto request = [](uint64_t prev, uint64_t count, uint64_t commit) {
    pb::AppendEntries req;
    req.set_term(2);
    req.set_leader_id("n1");
    req.set_prev_log_index(prev);
    req.set_prev_log_term(prev == 0 ? 0 : 2);
    for (uint64_t i = prev + 1; i <= prev + count; ++i)
      *req.add_entries() = entry(i, 2);
    req.set_leader_commit(commit);
    return req;
  };
  auto early = request(0, 2, 0);     // entries 1..2, nothing committed yet
  auto later = request(0, 5, 4);     // entries 1..5, commit 4
  auto heartbeat = request(2, 0, 4); // checks the log at 2 (the leader's view of our match)
  rules::accept_append(s, later);
  EXPECT_EQ(s.commit_index, 4u);
  EXPECT_EQ(rules::take_committed(s).size(), 4u);
  rules::accept_append(s, early); // delayed copy
  EXPECT_EQ(s.commit_index, 4u) << "a delayed AppendEntries lowered the commit index";
  rules::accept_append(s, heartbeat);
  EXPECT_EQ(s.commit_index, 4u) << "a heartbeat at an older match lowered the commit index";
  EXPECT_EQ(s.log.size(), 5u) << "a delayed AppendEntries cut entries it had verified";
  EXPECT_LE(s.apply_sent, s.commit_index);
}

} // namespace
} // namespace cafraft

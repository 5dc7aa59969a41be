// Unit tests of the pure Raft rules (runtime/rules.hpp) and the leader's replication
// bookkeeping (runtime/replication.hpp). No CAF:
// every test drives plain values and checks what a node would persist, send or apply.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <cafraft/messages/raft.pb.h>
#include <cafraft/runtime/config.hpp>
#include <cafraft/runtime/raft_state.hpp>
#include <cafraft/runtime/replication.hpp>
#include <cafraft/runtime/rules.hpp>

namespace {

using cafraft::raft_state;
using cafraft::replication;
using cafraft::replication_limits;
namespace pb = cafraft::pb;
namespace rules = cafraft::rules;
using send_mode = cafraft::replication::send_mode;

pb::LogEntry make_entry(uint64_t index, uint64_t term, std::string data = {}) {
  pb::LogEntry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(pb::ENTRY_COMMAND);
  e.set_data(std::move(data));
  return e;
}

std::vector<cafraft::member> three_voters() {
  return {{"n1", "a1"}, {"n2", "a2"}, {"n3", "a3"}};
}

// A node `id` in `term` whose log holds one entry per element of `log_terms` (its term).
raft_state make_state(const std::string& id, uint64_t term,
                      const std::vector<uint64_t>& log_terms) {
  raft_state s;
  s.id = id;
  s.term = term;
  s.stored_term = term; // as if loaded from storage: nothing to write yet
  s.config.members = three_voters();
  s.base_config = s.config;
  for (auto t : log_terms)
    s.log.push_back(make_entry(s.log.size() + 1, t, "cmd" + std::to_string(s.log.size() + 1)));
  return s;
}

std::vector<uint64_t> log_terms(const raft_state& s) {
  std::vector<uint64_t> out;
  for (auto& e : s.log)
    out.push_back(e.term());
  return out;
}

std::vector<uint64_t> indexes(const std::vector<pb::LogEntry>& entries) {
  std::vector<uint64_t> out;
  for (auto& e : entries)
    out.push_back(e.index());
  return out;
}

pb::RequestVote vote_request(uint64_t term, const std::string& candidate, uint64_t last_index,
                             uint64_t last_term) {
  pb::RequestVote req;
  req.set_term(term);
  req.set_candidate_id(candidate);
  req.set_last_log_index(last_index);
  req.set_last_log_term(last_term);
  return req;
}

// An AppendEntries from leader n1 in `term` carrying entries (first_index, terms...).
pb::AppendEntries append_request(uint64_t term, uint64_t prev_index, uint64_t prev_term,
                                 const std::vector<uint64_t>& entry_terms, uint64_t leader_commit,
                                 uint64_t read_round = 0) {
  pb::AppendEntries req;
  req.set_term(term);
  req.set_leader_id("n1");
  req.set_prev_log_index(prev_index);
  req.set_prev_log_term(prev_term);
  auto index = prev_index;
  for (auto t : entry_terms) {
    ++index;
    *req.add_entries() = make_entry(index, t, "cmd" + std::to_string(index));
  }
  req.set_leader_commit(leader_commit);
  req.set_read_round(read_round);
  return req;
}

pb::AppendEntriesResponse ack(const raft_state& leader, const std::string& peer, uint64_t match,
                              uint64_t read_round = 0) {
  pb::AppendEntriesResponse resp;
  resp.set_term(leader.term);
  resp.set_follower_id(peer);
  resp.set_success(true);
  resp.set_match_index(match);
  resp.set_read_round(read_round);
  resp.set_last_log_index(match);
  return resp;
}

pb::AppendEntriesResponse nack(const raft_state& leader, const std::string& peer,
                               uint64_t rejected_index, uint64_t hint) {
  pb::AppendEntriesResponse resp;
  resp.set_term(leader.term);
  resp.set_follower_id(peer);
  resp.set_success(false);
  resp.set_rejected_index(rejected_index);
  resp.set_reject_hint(hint);
  return resp;
}

// (prev_log_index, first entry index, last entry index) of each message, for compact asserts.
struct batch_view {
  uint64_t prev;
  uint64_t first;
  uint64_t last;
  bool operator==(const batch_view& o) const {
    return prev == o.prev && first == o.first && last == o.last;
  }
};

[[maybe_unused]] std::ostream& operator<<(std::ostream& os, const batch_view& b) {
  return os << "{prev " << b.prev << ", entries " << b.first << ".." << b.last << "}";
}

std::vector<batch_view> batches(const std::vector<pb::AppendEntries>& msgs) {
  std::vector<batch_view> out;
  for (auto& m : msgs) {
    batch_view b{m.prev_log_index(), 0, 0};
    if (m.entries_size() > 0) {
      b.first = m.entries(0).index();
      b.last = m.entries(m.entries_size() - 1).index();
    }
    out.push_back(b);
  }
  return out;
}

void append_to_log(raft_state& s, uint64_t term, size_t n) {
  for (size_t i = 0; i < n; ++i)
    s.log.push_back(make_entry(s.log.size() + 1, term));
}

// ---------------------------------------------------------------------------------------------
// observe_term (§5.1)
// ---------------------------------------------------------------------------------------------

TEST(RulesTerm, HigherTermAdoptsTermAndForgetsVoteAndLeader) {
  auto s = make_state("n2", 3, {1, 3});
  s.voted_for = "n1";
  s.leader_id = "n1";
  EXPECT_TRUE(rules::observe_term(s, 5));
  EXPECT_EQ(s.term, 5u);
  EXPECT_EQ(s.voted_for, "");
  EXPECT_EQ(s.leader_id, "");
  EXPECT_EQ(s.log.size(), 2u); // the log is untouched
}

TEST(RulesTerm, SameOrLowerTermChangesNothing) {
  auto s = make_state("n2", 3, {});
  s.voted_for = "n1";
  s.leader_id = "n1";
  EXPECT_FALSE(rules::observe_term(s, 3));
  EXPECT_FALSE(rules::observe_term(s, 2));
  EXPECT_EQ(s.term, 3u); // §5.1: the term never decreases
  EXPECT_EQ(s.voted_for, "n1");
  EXPECT_EQ(s.leader_id, "n1");
}

// ---------------------------------------------------------------------------------------------
// decide_vote (§5.2, §5.4.1)
// ---------------------------------------------------------------------------------------------

TEST(RulesVote, GrantsFirstCandidateOfTheTermAndRecordsTheVote) {
  auto s = make_state("n2", 4, {1, 2});
  auto resp = rules::decide_vote(s, vote_request(4, "n1", 2, 2));
  EXPECT_TRUE(resp.granted());
  EXPECT_EQ(resp.term(), 4u);
  EXPECT_EQ(resp.voter_id(), "n2");
  EXPECT_EQ(s.voted_for, "n1");
}

TEST(RulesVote, SameCandidateAskingAgainIsGrantedAgain) {
  // A retransmitted RequestVote (the response may have been lost) must get the same answer.
  auto s = make_state("n2", 4, {});
  ASSERT_TRUE(rules::decide_vote(s, vote_request(4, "n1", 0, 0)).granted());
  EXPECT_TRUE(rules::decide_vote(s, vote_request(4, "n1", 0, 0)).granted());
  EXPECT_EQ(s.voted_for, "n1");
}

TEST(RulesVote, SecondCandidateInTheSameTermIsRefused) {
  // §5.2: each server votes for at most one candidate in a given term.
  auto s = make_state("n2", 4, {});
  ASSERT_TRUE(rules::decide_vote(s, vote_request(4, "n1", 0, 0)).granted());
  auto resp = rules::decide_vote(s, vote_request(4, "n3", 10, 4));
  EXPECT_FALSE(resp.granted());
  EXPECT_EQ(s.voted_for, "n1");
}

TEST(RulesVote, RequestOfAnOlderTermIsRefusedWithTheCurrentTerm) {
  auto s = make_state("n2", 4, {});
  auto resp = rules::decide_vote(s, vote_request(3, "n1", 0, 0));
  EXPECT_FALSE(resp.granted());
  EXPECT_EQ(resp.term(), 4u); // tells the stale candidate to catch up
  EXPECT_EQ(s.voted_for, "");
}

TEST(RulesVote, CandidateWithLowerLastTermIsRefusedEvenWithLongerLog) {
  // §5.4.1: the log with the later last term is more up to date, whatever the lengths.
  auto s = make_state("n2", 5, {1, 2, 3});
  auto resp = rules::decide_vote(s, vote_request(5, "n1", 10, 2));
  EXPECT_FALSE(resp.granted());
  EXPECT_EQ(s.voted_for, ""); // a refused candidate does not use up the vote
}

TEST(RulesVote, CandidateWithSameLastTermButShorterLogIsRefused) {
  // §5.4.1: same last term, so the longer log is more up to date.
  auto s = make_state("n2", 5, {1, 3, 3});
  EXPECT_FALSE(rules::decide_vote(s, vote_request(5, "n1", 2, 3)).granted());
  EXPECT_EQ(s.voted_for, "");
}

TEST(RulesVote, CandidateAtLeastAsUpToDateIsGranted) {
  {
    auto s = make_state("n2", 5, {1, 3, 3});
    EXPECT_TRUE(rules::decide_vote(s, vote_request(5, "n1", 3, 3)).granted()); // equal logs
  }
  {
    auto s = make_state("n2", 5, {1, 3, 3});
    EXPECT_TRUE(rules::decide_vote(s, vote_request(5, "n1", 1, 4)).granted()); // later term
  }
}

TEST(RulesVote, RefusedStaleCandidateLeavesVoteForAnUpToDateOne) {
  auto s = make_state("n2", 5, {1, 3, 3});
  EXPECT_FALSE(rules::decide_vote(s, vote_request(5, "n1", 2, 3)).granted());
  EXPECT_TRUE(rules::decide_vote(s, vote_request(5, "n3", 3, 3)).granted());
  EXPECT_EQ(s.voted_for, "n3");
}

// ---------------------------------------------------------------------------------------------
// take_hard_state (§5.1: term and vote are persisted before anything depending on them is sent)
// ---------------------------------------------------------------------------------------------

TEST(RulesHardState, NothingToWriteWhenTermAndVoteAreUnchanged) {
  auto s = make_state("n2", 2, {});
  EXPECT_FALSE(rules::take_hard_state(s).has_value());
}

TEST(RulesHardState, NewTermIsWrittenOnce) {
  auto s = make_state("n2", 2, {});
  ASSERT_TRUE(rules::observe_term(s, 7));
  auto hs = rules::take_hard_state(s);
  ASSERT_TRUE(hs.has_value());
  EXPECT_EQ(hs->term(), 7u);
  EXPECT_EQ(hs->voted_for(), "");
  EXPECT_FALSE(rules::take_hard_state(s).has_value());
}

TEST(RulesHardState, GrantedVoteIsWrittenAndRepeatedGrantIsNot) {
  auto s = make_state("n2", 7, {});
  ASSERT_TRUE(rules::decide_vote(s, vote_request(7, "n3", 0, 0)).granted());
  auto hs = rules::take_hard_state(s);
  ASSERT_TRUE(hs.has_value());
  EXPECT_EQ(hs->term(), 7u);
  EXPECT_EQ(hs->voted_for(), "n3");
  ASSERT_TRUE(rules::decide_vote(s, vote_request(7, "n3", 0, 0)).granted());
  EXPECT_FALSE(rules::take_hard_state(s).has_value());
}

TEST(RulesHardState, RefusedVoteWritesNothing) {
  auto s = make_state("n2", 7, {1, 2});
  ASSERT_FALSE(rules::decide_vote(s, vote_request(7, "n3", 1, 1)).granted());
  EXPECT_FALSE(rules::take_hard_state(s).has_value());
}

// ---------------------------------------------------------------------------------------------
// accept_append (§5.3)
// ---------------------------------------------------------------------------------------------

TEST(RulesAppend, AppendsToAnEmptyLog) {
  auto s = make_state("n2", 1, {});
  auto fx = rules::accept_append(s, append_request(1, 0, 0, {1, 1, 1}, 0));
  EXPECT_TRUE(fx.response.success());
  EXPECT_EQ(fx.response.term(), 1u);
  EXPECT_EQ(fx.response.follower_id(), "n2");
  EXPECT_EQ(fx.response.match_index(), 3u);
  EXPECT_EQ(fx.response.last_log_index(), 3u);
  EXPECT_EQ(fx.truncated_from, 0u);
  EXPECT_EQ(indexes(fx.appended), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(log_terms(s), (std::vector<uint64_t>{1, 1, 1}));
  EXPECT_EQ(s.entry(2).data(), "cmd2");
}

TEST(RulesAppend, RejectsPrevIndexBeyondTheEndWithHintOnePastLast) {
  auto s = make_state("n2", 3, {1, 1});
  auto fx = rules::accept_append(s, append_request(3, 5, 3, {3}, 5));
  EXPECT_FALSE(fx.response.success());
  EXPECT_EQ(fx.response.reject_hint(), 3u); // last + 1
  EXPECT_EQ(fx.response.rejected_index(), 5u);
  EXPECT_EQ(fx.response.last_log_index(), 2u);
  EXPECT_TRUE(fx.appended.empty());
  EXPECT_EQ(fx.truncated_from, 0u);
  EXPECT_EQ(log_terms(s), (std::vector<uint64_t>{1, 1}));
  EXPECT_EQ(s.commit_index, 0u); // a rejected request commits nothing
}

TEST(RulesAppend, RejectsTermMismatchWithFirstIndexOfTheConflictingTerm) {
  // Fast backtracking (§5.3, end): the follower's entries of term 2 (indexes 3..5) are all
  // suspect, so the leader should retry before index 3 instead of one index at a time.
  auto s = make_state("n2", 4, {1, 1, 2, 2, 2});
  auto fx = rules::accept_append(s, append_request(4, 5, 3, {4}, 5));
  EXPECT_FALSE(fx.response.success());
  EXPECT_EQ(fx.response.reject_hint(), 3u);
  EXPECT_EQ(fx.response.rejected_index(), 5u);
  EXPECT_TRUE(fx.appended.empty());
  EXPECT_EQ(fx.truncated_from, 0u);
  EXPECT_EQ(log_terms(s), (std::vector<uint64_t>{1, 1, 2, 2, 2})); // nothing cut on a reject
  EXPECT_EQ(s.commit_index, 0u);
}

TEST(RulesAppend, TruncatesConflictingSuffixAndAppendsLeaderEntries) {
  // §5.3: "If an existing entry conflicts with a new one (same index but different terms),
  // delete the existing entry and all that follow it."
  auto s = make_state("n2", 3, {1, 1, 2, 2, 2});
  auto fx = rules::accept_append(s, append_request(3, 2, 1, {3, 3}, 0));
  EXPECT_TRUE(fx.response.success());
  EXPECT_EQ(fx.truncated_from, 3u);
  EXPECT_EQ(indexes(fx.appended), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(log_terms(s), (std::vector<uint64_t>{1, 1, 3, 3})); // index 5 (term 2) is gone too
  EXPECT_EQ(fx.response.match_index(), 4u);
  EXPECT_EQ(fx.response.last_log_index(), 4u);
}

TEST(RulesAppend, ConflictAfterMatchingEntriesTruncatesOnlyFromTheConflict) {
  auto s = make_state("n2", 3, {1, 1, 2, 2});
  // Entries 3 (term 2) match, entry 4 conflicts.
  auto fx = rules::accept_append(s, append_request(3, 2, 1, {2, 3, 3}, 0));
  EXPECT_TRUE(fx.response.success());
  EXPECT_EQ(fx.truncated_from, 4u);
  EXPECT_EQ(indexes(fx.appended), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(log_terms(s), (std::vector<uint64_t>{1, 1, 2, 3, 3}));
}

TEST(RulesAppend, StaleDuplicateRequestDoesNotTruncateLaterMatchingEntries) {
  // A delayed or duplicated AppendEntries for entries 2..3 arrives after entries 4..5 were
  // appended. Cutting the log at 4 would drop entries the leader may already count as
  // replicated here (and may have committed).
  auto s = make_state("n2", 1, {1, 1, 1, 1, 1});
  auto fx = rules::accept_append(s, append_request(1, 1, 1, {1, 1}, 0));
  EXPECT_TRUE(fx.response.success());
  EXPECT_EQ(fx.truncated_from, 0u);
  EXPECT_TRUE(fx.appended.empty());
  EXPECT_EQ(s.log.size(), 5u);
  EXPECT_EQ(fx.response.match_index(), 3u); // what this request verified
  EXPECT_EQ(fx.response.last_log_index(), 5u);
}

TEST(RulesAppend, OverlappingRequestAppendsOnlyTheNewTail) {
  auto s = make_state("n2", 1, {1, 1, 1});
  auto fx = rules::accept_append(s, append_request(1, 1, 1, {1, 1, 1, 1}, 0));
  EXPECT_TRUE(fx.response.success());
  EXPECT_EQ(fx.truncated_from, 0u);
  EXPECT_EQ(indexes(fx.appended), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(s.log.size(), 5u);
  EXPECT_EQ(fx.response.match_index(), 5u);
}

TEST(RulesAppend, CommitIsLeaderCommitCappedAtLastNewEntry) {
  // Figure 2, AppendEntries rule 5: commitIndex = min(leaderCommit, index of last new entry).
  auto s = make_state("n2", 1, {});
  rules::accept_append(s, append_request(1, 0, 0, {1, 1, 1}, 10));
  EXPECT_EQ(s.commit_index, 3u);
  rules::accept_append(s, append_request(1, 3, 1, {1}, 2));
  EXPECT_EQ(s.commit_index, 3u) << "commit index must never decrease";
  rules::accept_append(s, append_request(1, 4, 1, {}, 4));
  EXPECT_EQ(s.commit_index, 4u);
}

TEST(RulesAppend, HeartbeatDoesNotCommitUnverifiedEntriesBeyondPrev) {
  // The follower's entry 3 (term 2) was never checked against the leader of term 3: a heartbeat
  // at prev 2 with leader_commit 3 refers to the leader's entry 3, which may differ.
  auto s = make_state("n2", 3, {1, 1, 2});
  auto fx = rules::accept_append(s, append_request(3, 2, 1, {}, 3));
  EXPECT_TRUE(fx.response.success());
  EXPECT_EQ(s.commit_index, 2u);
  EXPECT_EQ(fx.response.match_index(), 2u);
}

TEST(RulesAppend, ReadRoundIsEchoedOnSuccessAndOnReject) {
  auto s = make_state("n2", 2, {1});
  auto ok = rules::accept_append(s, append_request(2, 1, 1, {}, 0, 42));
  EXPECT_TRUE(ok.response.success());
  EXPECT_EQ(ok.response.read_round(), 42u);
  auto bad = rules::accept_append(s, append_request(2, 9, 2, {}, 0, 43));
  EXPECT_FALSE(bad.response.success());
  EXPECT_EQ(bad.response.read_round(), 43u);
}

// ---------------------------------------------------------------------------------------------
// take_committed
// ---------------------------------------------------------------------------------------------

TEST(RulesCommitted, HandsOutCommittedEntriesOnceAndInOrder) {
  auto s = make_state("n2", 1, {1, 1, 1, 1, 1});
  EXPECT_TRUE(rules::take_committed(s).empty());
  s.commit_index = 3;
  auto first = rules::take_committed(s);
  EXPECT_EQ(indexes(first), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(first[1].data(), "cmd2");
  EXPECT_EQ(s.apply_sent, 3u);
  EXPECT_TRUE(rules::take_committed(s).empty());
  s.commit_index = 5;
  EXPECT_EQ(indexes(rules::take_committed(s)), (std::vector<uint64_t>{4, 5}));
  EXPECT_TRUE(rules::take_committed(s).empty());
}

// ---------------------------------------------------------------------------------------------
// replication: commit rule (§5.3, §5.4.2), pipelining, backtracking, ReadIndex (thesis §6.4)
// ---------------------------------------------------------------------------------------------

TEST(ReplicationProgress, CommitNeedsMajorityIncludingLeaderPersistedIndex) {
  auto s = make_state("n1", 2, {2, 2, 2});
  replication r{s, replication_limits{}};
  EXPECT_FALSE(r.on_response(ack(s, "n2", 3)));
  EXPECT_EQ(s.commit_index, 0u) << "one follower of three is not a majority";
  EXPECT_TRUE(r.on_local_persisted(3));
  EXPECT_EQ(s.commit_index, 3u);
}

TEST(ReplicationProgress, LeaderPersistedAloneDoesNotCommit) {
  auto s = make_state("n1", 2, {2, 2, 2});
  replication r{s, replication_limits{}};
  EXPECT_FALSE(r.on_local_persisted(3));
  EXPECT_EQ(s.commit_index, 0u);
  EXPECT_TRUE(r.on_response(ack(s, "n3", 2)));
  EXPECT_EQ(s.commit_index, 2u); // the highest index on a majority, not the leader's last
}

TEST(ReplicationProgress, OlderTermEntryOnMajorityIsNotCommittedByCounting) {
  // §5.4.2 (Figure 8): entry 1 of term 2 is on n1 and n2, a majority, but the leader of term 4
  // must not count replicas for it: it may still be overwritten by another leader.
  auto s = make_state("n1", 4, {2});
  replication r{s, replication_limits{}};
  r.on_local_persisted(1);
  EXPECT_FALSE(r.on_response(ack(s, "n2", 1)));
  EXPECT_FALSE(r.on_response(ack(s, "n3", 1)));
  EXPECT_EQ(s.commit_index, 0u);

  // Once an entry of the current term after it reaches a majority, both are committed.
  append_to_log(s, 4, 1);
  EXPECT_FALSE(r.on_local_persisted(2));
  EXPECT_EQ(s.commit_index, 0u);
  EXPECT_TRUE(r.on_response(ack(s, "n2", 2)));
  EXPECT_EQ(s.commit_index, 2u);
}

TEST(ReplicationProgress, PipelinesBatchesUpToTheInflightWindow) {
  auto s = make_state("n1", 2, {2});
  replication r{s, replication_limits{2, 1 << 20, 3}};
  // New followers start probing (one message at a time) at the leader's end (§5.3).
  auto probe = r.to_send("n2", send_mode::entries);
  ASSERT_EQ(batches(probe), (std::vector<batch_view>{{1, 0, 0}}));
  EXPECT_EQ(probe[0].prev_log_term(), 2u);
  EXPECT_TRUE(r.to_send("n2", send_mode::entries).empty()) << "probe still unanswered";
  r.on_response(ack(s, "n2", 1));

  append_to_log(s, 2, 9); // indexes 2..10
  auto window = r.to_send("n2", send_mode::entries);
  EXPECT_EQ(batches(window), (std::vector<batch_view>{{1, 2, 3}, {3, 4, 5}, {5, 6, 7}}));
  for (auto& m : window) {
    EXPECT_EQ(m.term(), 2u);
    EXPECT_EQ(m.leader_id(), "n1");
    EXPECT_EQ(m.prev_log_term(), 2u);
  }
  EXPECT_TRUE(r.to_send("n2", send_mode::entries).empty()) << "window of 3 is full";

  r.on_response(ack(s, "n2", 3));
  EXPECT_EQ(batches(r.to_send("n2", send_mode::entries)), (std::vector<batch_view>{{7, 8, 9}}));
  r.on_response(ack(s, "n2", 5));
  r.on_response(ack(s, "n2", 7));
  EXPECT_EQ(batches(r.to_send("n2", send_mode::entries)), (std::vector<batch_view>{{9, 10, 10}}));
  EXPECT_TRUE(r.to_send("n2", send_mode::entries).empty()) << "everything was sent";
  EXPECT_EQ(r.progress().at("n2").match, 7u);
}

TEST(ReplicationProgress, BatchRespectsByteLimitButCarriesAtLeastOneEntry) {
  auto s = make_state("n1", 2, {});
  replication r{s, replication_limits{100, 100, 16}};
  ASSERT_EQ(r.to_send("n2", send_mode::entries).size(), 1u); // probe at 0
  r.on_response(ack(s, "n2", 0));
  s.log.push_back(make_entry(1, 2, std::string(60, 'a')));
  s.log.push_back(make_entry(2, 2, std::string(60, 'b')));
  s.log.push_back(make_entry(3, 2, std::string(500, 'c'))); // alone above the limit
  auto msgs = r.to_send("n2", send_mode::entries);
  EXPECT_EQ(batches(msgs), (std::vector<batch_view>{{0, 1, 1}, {1, 2, 2}, {2, 3, 3}}));
}

TEST(ReplicationProgress, RejectMovesPeerToProbingAtTheHint) {
  auto s = make_state("n1", 3, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  replication r{s, replication_limits{2, 1 << 20, 16}};
  r.to_send("n2", send_mode::entries); // probe at 10
  r.on_response(nack(s, "n2", 10, 6));
  auto probe = r.to_send("n2", send_mode::entries);
  EXPECT_EQ(batches(probe), (std::vector<batch_view>{{5, 6, 7}}));
  EXPECT_EQ(probe[0].prev_log_term(), 1u);
  EXPECT_TRUE(r.to_send("n2", send_mode::entries).empty()) << "probing sends one at a time";
  EXPECT_TRUE(r.progress().at("n2").probing);
  EXPECT_EQ(r.progress().at("n2").next, 6u);
}

TEST(ReplicationProgress, RejectNeverMovesNextBelowMatchPlusOne) {
  // Entries through match are known to be on the follower: a hint below them (a confused or
  // misbehaving follower) must not make the leader resend or overwrite them.
  auto s = make_state("n1", 3, {3, 3, 3, 3, 3, 3, 3, 3});
  replication r{s, replication_limits{1, 1 << 20, 16}};
  r.to_send("n2", send_mode::entries); // probe at 8
  r.on_response(ack(s, "n2", 8));
  append_to_log(s, 3, 2);
  ASSERT_EQ(batches(r.to_send("n2", send_mode::entries)),
            (std::vector<batch_view>{{8, 9, 9}, {9, 10, 10}}));
  r.on_response(nack(s, "n2", 9, 1));
  EXPECT_TRUE(r.progress().at("n2").probing);
  EXPECT_EQ(r.progress().at("n2").next, 9u);
  EXPECT_EQ(r.progress().at("n2").match, 8u);
  EXPECT_EQ(batches(r.to_send("n2", send_mode::entries)), (std::vector<batch_view>{{8, 9, 9}}));
}

TEST(ReplicationProgress, StaleRejectAtOrBelowMatchIsIgnored) {
  auto s = make_state("n1", 3, {3, 3, 3, 3, 3});
  replication r{s, replication_limits{2, 1 << 20, 16}};
  r.to_send("n2", send_mode::entries);
  r.on_response(ack(s, "n2", 5));
  auto before = r.progress().at("n2");
  EXPECT_FALSE(r.on_response(nack(s, "n2", 4, 1))); // reordered reject of an old probe
  auto after = r.progress().at("n2");
  EXPECT_FALSE(after.probing);
  EXPECT_EQ(after.next, before.next);
  EXPECT_EQ(after.match, 5u);
  EXPECT_EQ(after.sent, before.sent);
  append_to_log(s, 3, 4);
  EXPECT_EQ(batches(r.to_send("n2", send_mode::entries)),
            (std::vector<batch_view>{{5, 6, 7}, {7, 8, 9}})); // still pipelining from 5
}

TEST(ReplicationProgress, TickRetransmitsWindowWhenNothingWasAcknowledged) {
  auto s = make_state("n1", 2, {2});
  replication r{s, replication_limits{2, 1 << 20, 3}};
  r.to_send("n2", send_mode::entries);
  r.on_response(ack(s, "n2", 1));
  append_to_log(s, 2, 9);
  ASSERT_EQ(r.to_send("n2", send_mode::entries).size(), 3u);
  // A heartbeat interval: at least one message (commit index, read round).
  EXPECT_FALSE(r.to_send("n2", send_mode::tick).empty());
  // Another interval without any acknowledgement: the window is presumed lost and resent.
  auto resent = r.to_send("n2", send_mode::tick);
  EXPECT_EQ(batches(resent), (std::vector<batch_view>{{1, 2, 3}, {3, 4, 5}, {5, 6, 7}}));
}

TEST(ReplicationProgress, TickDoesNotRetransmitAfterProgress) {
  auto s = make_state("n1", 2, {2});
  replication r{s, replication_limits{2, 1 << 20, 3}};
  r.to_send("n2", send_mode::entries);
  r.on_response(ack(s, "n2", 1));
  append_to_log(s, 2, 9);
  ASSERT_EQ(r.to_send("n2", send_mode::entries).size(), 3u);
  r.to_send("n2", send_mode::tick);
  r.on_response(ack(s, "n2", 3));
  auto msgs = r.to_send("n2", send_mode::tick);
  EXPECT_EQ(batches(msgs), (std::vector<batch_view>{{7, 8, 9}})); // only the window's new slot
}

TEST(ReplicationProgress, HeartbeatCarriesCommitAndReadRound) {
  auto s = make_state("n1", 2, {2, 2});
  replication r{s, replication_limits{}};
  r.to_send("n2", send_mode::entries);
  r.on_response(ack(s, "n2", 2));
  r.on_local_persisted(2);
  ASSERT_EQ(s.commit_index, 2u);
  auto round = r.new_read_round();
  auto hb = r.to_send("n2", send_mode::heartbeat);
  ASSERT_EQ(hb.size(), 1u);
  EXPECT_EQ(hb[0].entries_size(), 0);
  EXPECT_EQ(hb[0].prev_log_index(), 2u);
  EXPECT_EQ(hb[0].leader_commit(), 2u);
  EXPECT_EQ(hb[0].read_round(), round);
}

TEST(ReplicationProgress, ReadRoundConfirmedOnlyByMajority) {
  // Thesis §6.4 (ReadIndex): the leader serves a read only after a majority, itself included,
  // acknowledged a heartbeat round started after the read arrived.
  auto s = make_state("n1", 2, {2});
  replication r{s, replication_limits{}};
  auto r1 = r.new_read_round();
  EXPECT_EQ(r.confirmed_read_round(), 0u) << "the leader alone is not a majority";
  r.on_response(ack(s, "n2", 1, r1));
  EXPECT_EQ(r.confirmed_read_round(), r1);
  auto r2 = r.new_read_round();
  EXPECT_EQ(r.confirmed_read_round(), r1);
  r.on_response(ack(s, "n3", 1, r2));
  EXPECT_EQ(r.confirmed_read_round(), r2);
}

TEST(ReplicationProgress, ResponseOfAnotherTermIsIgnored) {
  auto s = make_state("n1", 3, {3, 3});
  replication r{s, replication_limits{}};
  r.on_local_persisted(2);
  auto round = r.new_read_round();
  for (uint64_t term : {2u, 4u}) {
    auto old = ack(s, "n2", 2, round);
    old.set_term(term);
    EXPECT_FALSE(r.on_response(old));
    auto reject = nack(s, "n3", 2, 1);
    reject.set_term(term);
    EXPECT_FALSE(r.on_response(reject));
  }
  EXPECT_EQ(s.commit_index, 0u);
  EXPECT_EQ(r.progress().at("n2").match, 0u);
  EXPECT_EQ(r.progress().at("n3").next, 3u);
  EXPECT_EQ(r.confirmed_read_round(), 0u);
}

} // namespace

// The fixtures of the Raft core's tests (tests/core_test.cpp, tests/quiesce_test.cpp): a node
// of a three-voter cluster as a raft_state, stepped through each role's rules, and helpers to
// find effects by kind.
#pragma once

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <cafraft/runtime/features.hpp>
#include <spdlog/logger.h>

#include <cafraft/runtime/core.hpp>
#include <cafraft/runtime/rules.hpp>

namespace cafraft::core::test {

using namespace std::chrono_literals;

inline pb::LogEntry entry(uint64_t index, uint64_t term) {
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
  std::mt19937_64 rng{7};
  raft_state s;

  CoreTest() {
    cfg.id = "n1";
    cfg.check_invariants = true;
    s.id = "n1";
    s.term = 2;
    s.stored_term = 2;
    s.base_config.members = {{"n1", "a1"}, {"n2", "a2"}, {"n3", "a3"}};
    s.config = s.base_config;
    s.was_member = true;
    s.log = {entry(1, 1), entry(2, 2)};
  }

  env e() { return env{cfg, log, now, rng}; }

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

/// n1 has just won term 3; its log holds (1,1) (2,2) from earlier leaders.
struct LeaderTest : CoreTest {
  leader_role r;

  LeaderTest() {
    s.term = 3;
    s.voted_for = "n1";
    s.stored_term = 3;
    s.stored_vote = "n1";
  }

  effects lead(event ev) { return step_leader(s, r, e(), ev); }

  /// Takes office and sends its no-op (index 3): returns the effects of the flush.
  effects take_office() {
    auto fx = lead(started{});
    EXPECT_EQ(where<flush_soon>(fx).size(), 1u);
    return lead(flush_now{});
  }

  pb::AppendEntriesResponse ack(const std::string& from, uint64_t match, uint64_t read_round = 0) {
    pb::AppendEntriesResponse resp;
    resp.set_term(s.term);
    resp.set_follower_id(from);
    resp.set_success(true);
    resp.set_match_index(match);
    resp.set_last_log_index(match);
    resp.set_read_round(read_round);
    return resp;
  }

  template <class T> const T* reply_to(const effects& fx, request_id id) {
    for (auto i : where<reply>(fx))
      if (std::get<reply>(fx[i]).id == id)
        return std::get_if<T>(&std::get<reply>(fx[i]).value);
    return nullptr;
  }
};

} // namespace cafraft::core::test

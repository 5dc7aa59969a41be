// Persist before you promise (Raft §5.1, thesis §3.8), under CAF's test scheduler in virtual
// time with disks slower than the network: a storage actor runs only when no other actor can,
// so every message that does not wait for its write overtakes it. Whatever leaves a node is then
// checked against that node's disk at the moment it leaves (network::on_send: as the sender
// hands it on, be it a role or the storage actor that sends what waited for a write):
//   - a granted vote (and a candidate's request for votes) only once the vote is on disk;
//   - a follower's AppendEntries success only once the entries it acknowledges are on disk;
//   - a client's write acknowledgement only once a majority of disks hold the entry;
// and a node that restarts from its disk keeps the vote it gave in its term.
#include <algorithm>
#include <set>
#include <string_view>

#include <gtest/gtest.h>

#include "harness.hpp"

namespace cafraft::test {
namespace {

uint64_t stored_last_index(const recovered_state& rec) {
  return (rec.snapshot ? rec.snapshot->index() : 0) + rec.log.size();
}

// The entry at `index` with `term` is on this disk (or in its snapshot).
bool stored(const recovered_state& rec, uint64_t index, uint64_t term) {
  auto base = rec.snapshot ? rec.snapshot->index() : 0;
  if (index <= base)
    return true;
  return index <= stored_last_index(rec) && rec.log[index - base - 1].term() == term;
}

class PersistOrderTest : public ::testing::Test {
protected:
  test_config cfg;
  caf::actor_system sys{cfg};
  driver d{sys, 1, false};
  std::unique_ptr<cluster> c;
  size_t waited = 0;               // times a write waited while other actors ran
  std::vector<std::string> broken; // promises made before what they depend on was durable
  size_t votes_checked = 0, acks_checked = 0;
  std::function<void()> after_job; // checked after every job

  void make(size_t n, std::function<void(node_config&)> tweak = nullptr) {
    c = std::make_unique<cluster>(sys, n, 1, nullptr, std::move(tweak));
    c->net->on_send = [this](const std::string& from, const std::string& to,
                             const caf::message& m) { check_leaving(from, to, m); };
  }

  // What node `from` sends must not depend on anything that is not on its disk yet.
  void check_leaving(const std::string& from, const std::string& to, const caf::message& m) {
    auto disk = [&] { return c->disks.at(from)->load(); };
    if (m.match_elements<pb::RequestVoteResponse>()) {
      auto& v = m.get_as<pb::RequestVoteResponse>(0);
      if (!v.granted() || v.pre_vote())
        return;
      ++votes_checked;
      auto hs = disk().hard_state;
      if (hs.term() != v.term() || hs.voted_for() != to)
        broken.push_back(from + " granted its vote in term " + std::to_string(v.term()) + " to " +
                         to + " while its disk held term " + std::to_string(hs.term()) +
                         ", vote '" + hs.voted_for() + "'");
    } else if (m.match_elements<pb::RequestVote>()) {
      auto& r = m.get_as<pb::RequestVote>(0);
      if (r.pre_vote())
        return;
      ++votes_checked;
      auto hs = disk().hard_state;
      if (hs.term() != r.term() || hs.voted_for() != from)
        broken.push_back(from + " asked for votes in term " + std::to_string(r.term()) +
                         " before its own vote was on disk");
    } else if (m.match_elements<pb::AppendEntriesResponse>()) {
      auto& a = m.get_as<pb::AppendEntriesResponse>(0);
      if (!a.success())
        return;
      ++acks_checked;
      auto rec = disk();
      if (stored_last_index(rec) < a.match_index() || rec.hard_state.term() < a.term())
        broken.push_back(from + " acknowledged entries through " + std::to_string(a.match_index()) +
                         " in term " + std::to_string(a.term()) + " while its disk held " +
                         std::to_string(stored_last_index(rec)) + " entries in term " +
                         std::to_string(rec.hard_state.term()));
    }
  }

  static bool is_storage(caf::resumable* job) {
    auto a = dynamic_cast<caf::scheduled_actor*>(job);
    return a != nullptr && std::string_view{a->name()} == "cafraft.storage";
  }

  // Runs every ready actor; storage actors only when nothing else is ready, the write asked for
  // last first (the disks of different nodes finish in any order).
  void run() {
    auto& s = d.sched;
    while (s.has_job()) {
      auto& jobs = s.jobs;
      auto i =
          std::find_if(jobs.begin(), jobs.end(), [](caf::resumable* j) { return !is_storage(j); });
      if (i == jobs.end())
        i = std::prev(jobs.end());
      else if (i != jobs.begin())
        ++waited;
      std::rotate(jobs.begin(), i, i + 1);
      s.run_once();
      if (after_job)
        after_job();
    }
  }

  template <class Pred> bool run_until(Pred pred, std::chrono::milliseconds limit) {
    for (auto t = 0ms; t <= limit; t += 1ms) {
      run();
      if (pred())
        return true;
      d.sched.advance_time(1ms);
    }
    return pred();
  }

  void advance(std::chrono::milliseconds span) {
    run_until([] { return false; }, span);
  }

  std::map<std::string, pb::NodeStatus> statuses() {
    std::map<std::string, std::shared_ptr<outcome<pb::NodeStatus>>> pending;
    for (auto& [id, n] : c->nodes)
      pending[id] = c->ask<pb::NodeStatus>(id, status_atom::value);
    run_until(
        [&] {
          return std::all_of(pending.begin(), pending.end(),
                             [](auto& p) { return p.second->done; });
        },
        2000ms);
    std::map<std::string, pb::NodeStatus> out;
    for (auto& [id, o] : pending)
      if (o->done && o->value)
        out[id] = *o->value;
    return out;
  }

  // The leader that every running node follows, once there is one.
  std::string wait_leader(std::chrono::milliseconds limit = 3000ms) {
    std::string leader;
    run_until(
        [&] {
          auto st = statuses();
          leader.clear();
          for (auto& [id, s] : st)
            if (s.role() == "leader")
              leader = id;
          if (leader.empty() || st.size() != c->nodes.size())
            return false;
          for (auto& [id, s] : st)
            if (s.leader_id() != leader || s.term() != st[leader].term())
              return false;
          return true;
        },
        limit);
    return leader;
  }

  void expect_kept_every_promise() {
    EXPECT_GT(waited, 0u) << "no write was ever slower than the network: the test tested nothing";
    for (auto& b : broken)
      ADD_FAILURE() << b;
    for (auto& v : c->checker->violations)
      ADD_FAILURE() << v;
    for (auto& v : c->net->vote_violations)
      ADD_FAILURE() << v;
  }
};

TEST_F(PersistOrderTest, NoVoteLeavesANodeBeforeItIsOnItsDisk) {
  make(3);
  auto leader = wait_leader();
  ASSERT_FALSE(leader.empty());
  // Three more elections: the leader stops, the others elect one, it comes back.
  for (int round = 0; round < 3; ++round) {
    c->stop(leader);
    auto next = wait_leader();
    ASSERT_FALSE(next.empty()) << "round " << round;
    c->restart(leader);
    leader = next;
  }
  EXPECT_GE(votes_checked, 8u);
  expect_kept_every_promise();
}

TEST_F(PersistOrderTest, NoAcknowledgementLeavesAFollowerBeforeItsEntriesAreOnItsDisk) {
  make(3);
  auto leader = wait_leader();
  ASSERT_FALSE(leader.empty());
  std::vector<std::shared_ptr<outcome<pb::WriteResponse>>> writes;
  for (int i = 0; i < 10; ++i) { // one at a time, then twenty at once
    writes.push_back(c->ask<pb::WriteResponse>(leader, put("k" + std::to_string(i), "v")));
    run_until([&] { return writes.back()->done; }, 1000ms);
  }
  for (int i = 0; i < 20; ++i)
    writes.push_back(c->ask<pb::WriteResponse>(leader, put("k" + std::to_string(i), "w")));
  run_until(
      [&] { return std::all_of(writes.begin(), writes.end(), [](auto& w) { return w->done; }); },
      2000ms);
  for (auto& w : writes)
    ASSERT_TRUE(w->done && w->value);
  EXPECT_GE(acks_checked, 20u);
  expect_kept_every_promise();
}

// The leader sends its entries to the followers while it writes them (thesis §10.2.1), so a
// follower's acknowledgement may come back before the leader's own write is durable. With one
// follower cut off, the leader's own copy is needed for a majority: until its disk has it, the
// write is not committed and the client hears nothing.
TEST_F(PersistOrderTest, AWriteIsAcknowledgedOnlyOnceAMajorityHoldsItOnDisk) {
  make(3);
  auto leader = wait_leader();
  ASSERT_FALSE(leader.empty());
  std::string cut = leader == "n3" ? "n2" : "n3";
  c->net->isolate(cut, c->ids);
  std::vector<std::shared_ptr<outcome<pb::WriteResponse>>> writes;
  std::set<size_t> seen;
  after_job = [&] {
    for (size_t i = 0; i < writes.size(); ++i) {
      auto& w = writes[i];
      if (!w->done || !w->value || !seen.insert(i).second)
        continue;
      size_t holders = 0;
      for (auto& id : c->ids)
        holders += stored(c->disks.at(id)->load(), w->value->index(), w->value->term());
      if (holders < 2)
        broken.push_back("write at index " + std::to_string(w->value->index()) +
                         " was acknowledged while " + std::to_string(holders) +
                         " disk(s) of 3 held it");
    }
  };
  for (int i = 0; i < 5; ++i) {
    writes.push_back(c->ask<pb::WriteResponse>(leader, put("k" + std::to_string(i), "v"), 2s));
    run_until([&] { return writes.back()->done; }, 1000ms);
  }
  for (int i = 0; i < 10; ++i)
    writes.push_back(c->ask<pb::WriteResponse>(leader, put("k" + std::to_string(i), "w"), 2s));
  run_until(
      [&] { return std::all_of(writes.begin(), writes.end(), [](auto& w) { return w->done; }); },
      2000ms);
  for (auto& w : writes)
    ASSERT_TRUE(w->done && w->value) << "a write failed although a majority was up";
  EXPECT_EQ(seen.size(), writes.size());
  after_job = nullptr;
  expect_kept_every_promise();
}

// §5.2: a node votes for at most one candidate per term, also across a crash. The vote is
// asked for directly here (no node campaigns), so the term and the candidates are known.
TEST(VoteAfterRestart, ANodeRefusesASecondCandidateInTheSameTermAfterAPowerFailure) {
  test_config cfg;
  caf::actor_system sys{cfg};
  driver d{sys, 1, false};
  auto net = std::make_shared<network>(1);
  cluster c{sys, 3, 1, net, [](node_config& nc) { nc.electable = false; }, true};
  std::vector<pb::RequestVoteResponse> answers; // what n1 told the candidates
  net->script = [&](const std::string& from, const std::string&, caf::message& m) {
    if (from == "n1" && m.match_elements<pb::RequestVoteResponse>())
      answers.push_back(m.get_as<pb::RequestVoteResponse>(0));
    return false;
  };
  auto ask_vote = [&](const std::string& candidate) {
    pb::RequestVote req;
    req.set_term(5);
    req.set_candidate_id(candidate);
    answers.clear();
    caf::anon_send(c.nodes.at("n1"), req);
    d.run_until([&] { return !answers.empty(); }, 500ms);
    if (answers.empty())
      ADD_FAILURE() << "n1 did not answer " << candidate;
    return answers.empty() ? pb::RequestVoteResponse{} : answers.front();
  };
  d.advance(100ms);
  auto first = ask_vote("n2");
  ASSERT_TRUE(first.granted()) << "n1 refused the first candidate of term 5";
  c.stop("n1"); // power failure
  c.restart("n1");
  d.advance(100ms);
  auto st = statuses(c, d);
  EXPECT_EQ(st["n1"].term(), 5u) << "the term was not kept across the restart";
  auto second = ask_vote("n3");
  EXPECT_FALSE(second.granted()) << "n1 voted for n2 and, after a restart, for n3 in term 5";
  EXPECT_EQ(second.term(), 5u);
  auto again = ask_vote("n2");
  EXPECT_TRUE(again.granted()) << "a retransmitted request of the same candidate gets the same "
                                  "answer";
  for (auto& v : net->vote_violations)
    ADD_FAILURE() << v;
}

} // namespace
} // namespace cafraft::test

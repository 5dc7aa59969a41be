// Client sessions (docs/sessions.md, thesis §6.3): a write retried with its session's sequence
// number applies once, whoever leads when the retry comes, across snapshots and restarts;
// sessions expire by the leaders' clocks carried in the log; an unknown session, a sequence
// the client acknowledged and a cluster below the sessions' feature level are refused with
// nothing applied. Under CAF's test scheduler, in virtual time.
#include <gtest/gtest.h>

#include <cafraft/messages/errors.hpp>
#include <cafraft/runtime/features.hpp>
#include <cafraft/runtime/sessions.hpp>

#include "cluster_test.hpp"

namespace cafraft::test {
namespace {

pb::SessionTag tag(uint64_t session, uint64_t seq, uint64_t acked_below = 0) {
  pb::SessionTag t;
  t.set_id(session);
  t.set_sequence(seq);
  t.set_acked_below(acked_below);
  return t;
}

pb::PutRequest put_in(uint64_t session, uint64_t seq, const std::string& key,
                      const std::string& value, uint64_t acked_below = 0) {
  auto req = put(key, value);
  *req.mutable_session() = tag(session, seq, acked_below);
  return req;
}

bool is(const caf::error& e, errc c) {
  return e.category() == error_category && e.code() == static_cast<uint8_t>(c);
}

class Sessions : public cluster_test {
protected:
  uint32_t level = features::current;
  std::chrono::milliseconds session_timeout{60000};
  uint64_t snapshot_entries = 0;

  std::unique_ptr<cluster> make(size_t n = 3) {
    return std::make_unique<cluster>(sys, n, 11, nullptr, [this](node_config& nc) {
      nc.feature_level = level;
      nc.session_timeout = session_timeout;
      nc.snapshot_entries = snapshot_entries;
    });
  }

  /// A leader with the sessions' feature level in force on every node.
  std::string ready(cluster& c) {
    auto leader = wait_leader(c);
    d.run_until(
        [&] {
          auto st = statuses(c, d);
          for (auto& [id, s] : st)
            if (s.cluster_level() < features::sessions)
              return false;
          return st.size() == c.nodes.size();
        },
        3000ms);
    return wait_leader(c);
  }

  uint64_t open(cluster& c, const std::string& node) {
    auto w = call<pb::WriteResponse>(c, node, pb::OpenSessionRequest{});
    EXPECT_TRUE(w) << render(w.error());
    return w ? w->index() : 0;
  }

  std::optional<std::string> get(cluster& c, const std::string& node, const std::string& key) {
    pb::GetRequest req;
    req.set_key(key);
    auto r = call<pb::GetResponse>(c, node, req);
    EXPECT_TRUE(r) << render(r.error());
    if (!r || !r->found())
      return std::nullopt;
    return r->value();
  }
};

TEST_F(Sessions, ARetriedWriteIsAnsweredFromTheTableAndNotAppliedAgain) {
  auto c = make();
  auto leader = ready(*c);
  ASSERT_FALSE(leader.empty());
  auto s = open(*c, leader);
  ASSERT_GT(s, 0u);
  auto first = call<pb::WriteResponse>(*c, leader, put_in(s, 1, "k", "one"));
  ASSERT_TRUE(first) << render(first.error());
  EXPECT_FALSE(first->duplicate());
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put_in(s, 2, "k", "two")));
  // The answer to sequence 1 was lost: the client sends it again. Applied again, it would set
  // the key back to "one".
  auto again = call<pb::WriteResponse>(*c, leader, put_in(s, 1, "k", "one"));
  ASSERT_TRUE(again) << render(again.error());
  EXPECT_TRUE(again->duplicate());
  EXPECT_EQ(again->index(), first->index());
  EXPECT_EQ(again->result(), first->result()) << "the saved answer, as the first apply gave it";
  EXPECT_EQ(get(*c, leader, "k"), "two");
}

TEST_F(Sessions, AnUnknownSessionIsRefusedAndNothingIsApplied) {
  auto c = make();
  auto leader = ready(*c);
  auto w = call<pb::WriteResponse>(*c, leader, put_in(999, 1, "k", "v"));
  ASSERT_FALSE(w);
  EXPECT_TRUE(is(w.error(), errc::session_expired)) << render(w.error());
  EXPECT_FALSE(is_indefinite(w.error()));
  EXPECT_EQ(get(*c, leader, "k"), std::nullopt);
}

TEST_F(Sessions, ASequenceTheClientAcknowledgedIsRefused) {
  auto c = make();
  auto leader = ready(*c);
  auto s = open(*c, leader);
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put_in(s, 1, "k", "one")));
  // Sequence 2 says the client holds every answer below 2: the table forgets sequence 1.
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put_in(s, 2, "k", "two", 2)));
  auto w = call<pb::WriteResponse>(*c, leader, put_in(s, 1, "k", "one"));
  ASSERT_FALSE(w);
  EXPECT_TRUE(is(w.error(), errc::invalid_request)) << render(w.error());
  EXPECT_EQ(get(*c, leader, "k"), "two");
}

TEST_F(Sessions, ExpireByTheLeadersClockInTheLog) {
  session_timeout = 2000ms;
  auto c = make();
  auto leader = ready(*c);
  auto s = open(*c, leader);
  auto other = open(*c, leader);
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put_in(s, 1, "k", "one")));
  // `other` keeps writing every second; `s` is idle for longer than its timeout.
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    d.run_until([] { return false; }, 1000ms);
    ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put_in(other, seq, "o", "x")));
  }
  auto w = call<pb::WriteResponse>(*c, leader, put_in(s, 2, "k", "two"));
  ASSERT_FALSE(w);
  EXPECT_TRUE(is(w.error(), errc::session_expired)) << render(w.error());
  EXPECT_EQ(get(*c, leader, "k"), "one");
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put_in(other, 4, "o", "y")))
      << "a session in use does not expire";
  // Every node expired the same session at the same entry: their tables agree.
  for (auto& id : c->ids) {
    pb::InspectRequest q;
    q.set_name(id + "/state_machine");
    auto i = call<pb::Inspection>(*c, id, q);
    ASSERT_TRUE(i) << id;
    d.run_until([&] { return false; }, 200ms);
    i = call<pb::Inspection>(*c, id, q);
    ASSERT_TRUE(i) << id;
    EXPECT_EQ(i->fields().at("sessions"), "1") << id;
    EXPECT_EQ(i->fields().at("sessions_expired"), "1") << id;
  }
}

TEST_F(Sessions, TheTableIsInSnapshotsAndANewLeaderAnswersARetry) {
  snapshot_entries = 8;
  auto c = make();
  auto leader = ready(*c);
  auto s = open(*c, leader);
  auto first = call<pb::WriteResponse>(*c, leader, put_in(s, 1, "k", "one"));
  ASSERT_TRUE(first);
  // A follower is down while the others write on and compact their logs: it comes back to a
  // snapshot, session table included.
  std::string lagging;
  for (auto& id : c->ids)
    if (id != leader)
      lagging = id;
  c->stop(lagging);
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put("f" + std::to_string(i), "v")));
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put_in(s, 2, "k", "two")));
  c->restart(lagging);
  d.run_until([] { return false; }, 1000ms);
  EXPECT_GT(c->checker->restores, 0u) << "no snapshot was installed";
  pb::TransferLeadershipRequest t;
  t.set_target(lagging);
  ASSERT_TRUE(call<pb::LeaderInfo>(*c, leader, t));
  ASSERT_EQ(wait_leader(*c), lagging);
  auto again = call<pb::WriteResponse>(*c, lagging, put_in(s, 1, "k", "one"));
  ASSERT_TRUE(again) << render(again.error());
  EXPECT_TRUE(again->duplicate());
  EXPECT_EQ(again->index(), first->index());
  EXPECT_EQ(get(*c, lagging, "k"), "two");
  // And after every node restarts from its snapshot and log.
  for (auto& id : c->ids)
    c->stop(id);
  for (auto& id : c->ids)
    c->restart(id);
  leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  again = call<pb::WriteResponse>(*c, leader, put_in(s, 2, "k", "two"));
  ASSERT_TRUE(again) << render(again.error());
  EXPECT_TRUE(again->duplicate());
}

TEST_F(Sessions, AreRefusedUntilEveryMemberSupportsThem) {
  level = features::cluster_level_entries;
  auto c = make();
  auto leader = wait_leader(*c);
  d.run_until([] { return false; }, 1000ms);
  auto w = call<pb::WriteResponse>(*c, leader, pb::OpenSessionRequest{});
  ASSERT_FALSE(w);
  EXPECT_TRUE(is(w.error(), errc::invalid_request)) << render(w.error());
  EXPECT_NE(render(w.error()).find("feature level"), std::string::npos) << render(w.error());
}

TEST_F(Sessions, AFollowerRedirectsSessionRequestsToTheLeader) {
  auto c = make();
  auto leader = ready(*c);
  for (auto& id : c->ids)
    if (id != leader) {
      auto w = call<pb::WriteResponse>(*c, id, pb::OpenSessionRequest{});
      ASSERT_FALSE(w);
      std::string hint, address;
      EXPECT_TRUE(leader_hint(w.error(), hint, address)) << render(w.error());
      EXPECT_EQ(hint, leader);
    }
}

// The table alone: the rules every node applies alike.
TEST(SessionTable, ExpiresByTheHighestTimeSeenAndKeepsOnlyUnacknowledgedAnswers) {
  session_table t;
  auto entry = [](uint64_t time, std::optional<pb::SessionTag> tag, std::string cmd = {}) {
    pb::SessionEntry e;
    e.set_time_ms(time);
    if (tag)
      *e.mutable_tag() = *tag;
    else
      e.set_timeout_ms(100);
    e.set_command(std::move(cmd));
    return e.SerializeAsString();
  };
  int applied = 0;
  auto run = [&](const std::string& c) {
    ++applied;
    return "r:" + c;
  };
  EXPECT_EQ(t.apply(5, entry(1000, std::nullopt), run).index(), 5u);
  auto r = t.apply(6, entry(1010, tag(5, 1), "a"), run);
  EXPECT_EQ(r.result(), "r:a");
  // A leader whose clock is behind does not turn the table's time back: the session stays
  // alive by the highest time seen (1010), not by 900.
  r = t.apply(7, entry(900, tag(5, 1), "a"), run);
  EXPECT_TRUE(r.duplicate());
  EXPECT_EQ(r.index(), 6u);
  EXPECT_EQ(applied, 1);
  // Round trip through a snapshot.
  session_table copy;
  ASSERT_TRUE(copy.decode(t.encode()));
  EXPECT_TRUE(copy.apply(8, entry(1020, tag(5, 1), "a"), run).duplicate());
  // Its last write was at 1020 (the retry counts): 1120 is its deadline. An entry of another
  // session at 1120 leaves it; one at 1121 expires it.
  EXPECT_EQ(copy.apply(9, entry(1120, std::nullopt), run).index(), 9u);
  EXPECT_EQ(copy.size(), 2u);
  EXPECT_EQ(copy.apply(10, entry(1121, std::nullopt), run).index(), 10u);
  EXPECT_EQ(copy.size(), 2u) << "session 5 expired, session 10 opened";
  r = copy.apply(11, entry(1121, tag(5, 2), "b"), run);
  EXPECT_EQ(r.error(), static_cast<uint32_t>(errc::session_expired));
  EXPECT_EQ(applied, 1);
  EXPECT_FALSE(copy.decode("\xff\xff garbage"));
  EXPECT_EQ(copy.size(), 2u) << "a malformed table leaves the table as it was";
}

} // namespace
} // namespace cafraft::test

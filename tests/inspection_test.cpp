// The actor directory and inspection of a node (docs/inspection.md), under CAF's test
// scheduler: every actor a node spawns is listed with kind, name and parent, and each answers
// with its own state; a user's actor joins the directory with one call and leaves it when it
// ends.
#include <gtest/gtest.h>

#include "harness.hpp"
#include <cafraft/actors/inspect.hpp>

namespace cafraft::test {
namespace {

using ping_atom = caf::atom_constant<caf::atom("ping")>;

class InspectionTest : public ::testing::Test {
protected:
  test_config cfg;
  caf::actor_system sys{cfg};
  driver d{sys, 1, false};

  template <class Resp, class Req> caf::expected<Resp> call(const caf::actor& target, Req req) {
    auto o = ask_actor<Resp>(sys, target, std::move(req), std::chrono::seconds{2});
    d.run_until([&] { return o->done; }, 2100ms);
    EXPECT_TRUE(o->done);
    return o->value;
  }

  std::map<std::string, pb::ActorInfo> directory(const caf::actor& node) {
    std::map<std::string, pb::ActorInfo> out;
    auto dir = call<pb::ActorDirectory>(node, directory_atom::value);
    EXPECT_TRUE(dir);
    if (dir)
      for (auto& a : dir->actors())
        out[a.name()] = a;
    return out;
  }

  pb::Inspection inspect(const caf::actor& node, const std::string& name) {
    pb::InspectRequest req;
    req.set_name(name);
    auto r = call<pb::Inspection>(node, req);
    EXPECT_TRUE(r) << name << ": " << render(r.error());
    return r ? *r : pb::Inspection{};
  }
};

TEST_F(InspectionTest, EveryActorOfANodeIsListedAndAnswersWithItsState) {
  cluster c{sys, 3, 1, nullptr};
  std::string leader;
  d.run_until([&] { return !(leader = agreed_leader(c, d)).empty(); }, 3000ms);
  ASSERT_FALSE(leader.empty());
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(c.nodes[leader], put("k" + std::to_string(i), "v")));
  auto& node = c.nodes[leader];
  auto dir = directory(node);
  std::map<std::string, std::string> want{{leader, "node"},
                                          {leader + "/leader", "leader"},
                                          {leader + "/storage", "storage"},
                                          {leader + "/state_machine", "state_machine"},
                                          {leader + "/change_request", "change_request"}};
  for (auto& id : c.ids)
    if (id != leader)
      want[leader + "/peer-" + id] = "peer";
  EXPECT_EQ(dir.size(), want.size());
  for (auto& [name, kind] : want) {
    ASSERT_EQ(dir.count(name), 1u) << name << " is not listed";
    EXPECT_EQ(dir[name].kind(), kind) << name;
    EXPECT_EQ(dir[name].parent(), name == leader ? "" : leader) << name;
    EXPECT_GT(dir[name].started_unix_ms(), 0u) << name;
  }
  auto l = inspect(node, leader + "/leader");
  EXPECT_EQ(l.kind(), "leader");
  EXPECT_EQ(l.fields().at("leader"), leader);
  EXPECT_EQ(l.fields().at("commit_index"), "6"); // initial configuration + 5 writes
  EXPECT_GT(l.handled(), 0u);
  // The leader times each write it answers (the dashboard's write latency chart).
  EXPECT_EQ(l.fields().at("writes_answered"), "5");
  EXPECT_EQ(l.fields().count("write_answer_us_sum"), 1u);
  for (auto& id : c.ids)
    if (id != leader) {
      EXPECT_EQ(l.fields().at("peer." + id + ".match"), "6") << id;
      EXPECT_EQ(l.fields().at("peer." + id + ".state"), "replicate") << id;
      // Followers answer every heartbeat (50 ms).
      EXPECT_LE(std::stoll(l.fields().at("peer." + id + ".last_contact_ms")), 50) << id;
      auto p = inspect(node, leader + "/peer-" + id);
      EXPECT_EQ(p.fields().at("connected"), "true");
      EXPECT_GT(std::stoull(p.fields().at("sent")), 0u);
    }
  auto s = inspect(node, leader + "/storage");
  EXPECT_EQ(s.fields().at("last_index_written"), "6");
  EXPECT_EQ(s.fields().count("segments"), 0u); // in-memory storage has none
  EXPECT_GT(std::stoull(s.fields().at("group_commits")), 0u);
  auto sm = inspect(node, leader + "/state_machine");
  EXPECT_EQ(sm.fields().at("applied_index"), "6");
  auto cr = inspect(node, leader + "/change_request");
  EXPECT_EQ(cr.fields().at("queued"), "0");
  auto n = inspect(node, leader);
  EXPECT_EQ(n.fields().at("role"), "leader");
  // A follower lists its role as follower.
  auto other = leader == "n1" ? std::string{"n2"} : std::string{"n1"};
  EXPECT_EQ(directory(c.nodes[other]).count(other + "/follower"), 1u);
  EXPECT_EQ(inspect(c.nodes[other], other + "/follower").fields().at("leader"), leader);
  pb::InspectRequest nobody;
  nobody.set_name(leader + "/nobody");
  auto missing = call<pb::Inspection>(node, nobody);
  ASSERT_FALSE(missing);
}

TEST_F(InspectionTest, UserActorsJoinTheDirectoryWithOneCallAndLeaveWhenTheyEnd) {
  cluster c{sys, 1, 1, nullptr};
  auto& node = c.nodes["n1"];
  // An inspected_actor counts its messages; make_inspection adds them and its mailbox.
  auto mine = sys.spawn([](inspected_actor* self) -> caf::behavior {
    return {[self](inspect_atom) { return make_inspection(self, "cache", {{"entries", "42"}}); }};
  });
  enlist_actor(node, "cache", "cache", mine);
  d.run();
  auto dir = directory(node);
  ASSERT_EQ(dir.count("n1/cache"), 1u);
  EXPECT_EQ(dir["n1/cache"].kind(), "cache");
  auto i = inspect(node, "n1/cache");
  EXPECT_EQ(i.fields().at("entries"), "42");
  EXPECT_EQ(i.handled(), 1u); // the inspection itself
  caf::anon_send_exit(mine, caf::exit_reason::user_shutdown);
  d.run();
  EXPECT_EQ(directory(node).count("n1/cache"), 0u);
}

TEST_F(InspectionTest, InspectionsGiveMessageRatesOverTheLastSeconds) {
  cluster c{sys, 1, 1, nullptr};
  auto& node = c.nodes["n1"];
  auto mine = sys.spawn([](inspected_actor* self) -> caf::behavior {
    return {[](ping_atom) {}, [self](inspect_atom) { return make_inspection(self, "pinged", {}); }};
  });
  enlist_actor(node, "pinged", "pinged", mine);
  auto pings = [&](int n) {
    for (int k = 0; k < n; ++k)
      caf::anon_send(mine, ping_atom::value);
    d.run();
  };
  pings(30); // one second
  d.sched.advance_time(1s);
  pings(50); // the next
  d.sched.advance_time(1s);
  auto i = inspect(node, "n1/pinged");
  EXPECT_EQ(i.handled(), 81u);
  EXPECT_DOUBLE_EQ(i.rate_1s(), 50.0);
  EXPECT_DOUBLE_EQ(i.rate_10s(), 8.0); // 80 in the last ten seconds
  // Idle for longer than the window: the rates fall to zero, the total stays.
  d.sched.advance_time(20s);
  i = inspect(node, "n1/pinged");
  EXPECT_EQ(i.handled(), 82u);
  EXPECT_DOUBLE_EQ(i.rate_1s(), 0.0);
  EXPECT_DOUBLE_EQ(i.rate_10s(), 0.0);
  // The roles count too: a leader handles its timers.
  d.advance(3000ms);
  auto l = inspect(node, "n1/leader");
  EXPECT_GT(l.handled(), 0u);
  EXPECT_GT(l.rate_10s(), 0.0);
  caf::anon_send_exit(mine, caf::exit_reason::user_shutdown);
  d.run();
}

// The hand-offs of one replicated write (docs/architecture.md, "Hand-offs"): the client's
// request, the leader's write and its AppendEntries, each follower's write and answer, and the
// three state machines, counted as the nodes' actors handle them. Raft messages and clients'
// requests pass through the node and peer actors without being handled there.
TEST_F(InspectionTest, AReplicatedWriteCostsAtMostFourteenHandledMessagesOverThreeNodes) {
  cluster c{sys, 3, 1, nullptr};
  std::string leader;
  d.run_until([&] { return !(leader = agreed_leader(c, d)).empty(); }, 3000ms);
  ASSERT_FALSE(leader.empty());
  auto handled = [&] {
    std::map<std::string, uint64_t> by_kind;
    for (auto& [id, node] : c.nodes)
      for (auto& [name, info] : directory(node))
        by_kind[info.kind()] += inspect(node, name).handled();
    return by_kind;
  };
  auto write = [&](int i) {
    ASSERT_TRUE(call<pb::WriteResponse>(c.nodes[leader], put("k" + std::to_string(i), "v")));
  };
  for (int i = 0; i < 5; ++i) // the followers learn of the leader's no-op and first entries
    write(i);
  auto before = handled();
  constexpr int writes = 100;
  for (int i = 0; i < writes; ++i)
    write(i);
  auto after = handled();
  double total = 0;
  std::string counts;
  for (auto& [kind, n] : after) {
    auto per_write = static_cast<double>(n - before[kind]) / writes;
    total += per_write;
    counts += " " + kind + " " + std::to_string(per_write);
  }
  EXPECT_LE(total, 14.0) << "handled per write:" << counts;
  // Besides the inspections above: neither a node nor a peer actor handles the write's
  // messages.
  EXPECT_LT(after["node"] - before["node"], writes / 2u) << counts;
  EXPECT_LT(after["peer"] - before["peer"], writes / 2u) << counts;
}

TEST(MessageCounter, CountsPerSecondAndForgetsWhatLeftTheWindow) {
  using tp = message_counter::time_point;
  message_counter m;
  auto at = [](int64_t ms) { return tp{std::chrono::milliseconds{ms}}; };
  for (int k = 0; k < 4; ++k)
    m.count(at(1000 + k)); // second 1
  for (int k = 0; k < 6; ++k)
    m.count(at(3500)); // second 3 (second 2 idle)
  EXPECT_EQ(m.total(), 10u);
  EXPECT_DOUBLE_EQ(m.rate(at(3900), 1), 0.0); // second 2
  EXPECT_DOUBLE_EQ(m.rate(at(4000), 1), 6.0); // second 3
  EXPECT_DOUBLE_EQ(m.rate(at(4000), 3), 10.0 / 3);
  EXPECT_DOUBLE_EQ(m.rate(at(11999), 10), 1.0); // seconds 1 to 10
  EXPECT_DOUBLE_EQ(m.rate(at(12000), 10), 0.6); // seconds 2 to 11: second 1 left
  m.count(at(60000)); // much later: the old seconds are cleared, not reused
  EXPECT_DOUBLE_EQ(m.rate(at(61000), 10), 0.1);
  EXPECT_EQ(m.total(), 11u);
}

} // namespace
} // namespace cafraft::test

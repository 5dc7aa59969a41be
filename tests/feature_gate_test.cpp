// Feature levels (runtime/features.hpp): a cluster puts a level in force only once every member
// announced it supports it. A mixed cluster, one node standing for an older binary, holds the
// gate shut; it opens once that node comes back upgraded; an older binary is then refused when
// it joins. Under CAF's test scheduler, in virtual time.
#include <gtest/gtest.h>

#include <cafraft/runtime/features.hpp>

#include "cluster_test.hpp"

namespace cafraft::test {
namespace {

class FeatureGate : public cluster_test {
protected:
  std::map<std::string, uint32_t> levels; // nodes of an older binary, and their level

  std::unique_ptr<cluster> make(size_t n) {
    return std::make_unique<cluster>(sys, n, 7, nullptr, [this](node_config& nc) {
      auto i = levels.find(nc.id); // the others run this binary
      nc.feature_level = i != levels.end() ? i->second : features::current;
    });
  }

  std::map<std::string, pb::NodeStatus> statuses_of(cluster& c) { return statuses(c, d); }

  /// Runs until every running node has `level` in force (false after `limit`).
  bool in_force_everywhere(cluster& c, uint32_t level, std::chrono::milliseconds limit = 3000ms) {
    return d.run_until(
        [&] {
          auto st = statuses(c, d);
          if (st.size() != c.nodes.size())
            return false;
          for (auto& [id, s] : st)
            if (s.cluster_level() != level)
              return false;
          return true;
        },
        limit);
  }
};

TEST_F(FeatureGate, HoldsWhileAMemberIsOlderAndOpensOnceItUpgrades) {
  levels["n3"] = features::base; // n3 runs a binary of the base level
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put("k" + std::to_string(i), "v")));
  d.run_until([] { return false; }, 1000ms); // heartbeats: every answer announces its level
  for (auto& [id, s] : statuses_of(*c)) {
    EXPECT_EQ(s.cluster_level(), features::base) << id << ": the gate opened past n3";
    EXPECT_EQ(s.feature_level(), id == "n3" ? features::base : features::current) << id;
  }
  // n3 comes back with the new binary: the leader puts the level in force, and every node
  // (n3 included) applies it.
  c->stop("n3");
  levels.erase("n3");
  c->restart("n3");
  ASSERT_TRUE(in_force_everywhere(*c, features::current)) << "the gate never opened";
  leader = wait_leader(*c);
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put("after", "v")));
  // A level in force survives a restart of every node.
  for (auto& id : c->ids)
    c->stop(id);
  for (auto& id : c->ids)
    c->restart(id);
  ASSERT_FALSE(wait_leader(*c).empty());
  EXPECT_TRUE(in_force_everywhere(*c, features::current));
}

TEST_F(FeatureGate, HoldsWhenTheOlderNodeLeads) {
  levels["n1"] = features::base;
  levels["n2"] = features::base;
  levels["n3"] = features::base;
  auto c = make(3);
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  // Every node but the leader upgrades: the leader's own binary still holds the gate.
  for (auto& id : c->ids)
    if (id != leader) {
      c->stop(id);
      levels.erase(id);
      c->restart(id);
    }
  d.run_until([] { return false; }, 1000ms);
  auto st = statuses_of(*c);
  auto now = wait_leader(*c);
  if (now == leader) { // (the old leader still leads)
    for (auto& [id, s] : st)
      EXPECT_EQ(s.cluster_level(), features::base) << id;
  }
  c->stop(leader);
  levels.erase(leader);
  c->restart(leader);
  EXPECT_TRUE(in_force_everywhere(*c, features::current));
}

TEST_F(FeatureGate, AnOlderBinaryIsRefusedWhenItJoinsAClusterOfANewerLevel) {
  auto c = make(3);
  ASSERT_FALSE(wait_leader(*c).empty());
  ASSERT_TRUE(in_force_everywhere(*c, features::current));
  levels["n4"] = features::base;
  auto n4 = c->join("n4", std::chrono::seconds{2});
  auto j = ask_with<pb::MembershipResponse>(sys, n4, 3000ms, joined_atom::value);
  d.run_until([&] { return j->done; }, 3100ms);
  ASSERT_TRUE(j->done);
  ASSERT_FALSE(j->value) << "a node of level 1 joined a cluster of level 2";
  EXPECT_NE(render(j->value.error()).find("supports feature level 1"), std::string::npos)
      << render(j->value.error());
  auto st = statuses_of(*c);
  for (auto& [id, s] : st)
    for (auto& m : s.members())
      EXPECT_NE(m.id(), "n4") << id << " lists n4";
}

} // namespace
} // namespace cafraft::test

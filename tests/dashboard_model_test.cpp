// What the dashboard makes of its samples (apps/dashboard_model.hpp): the members' health and
// lag, the rates behind the charts, and the events of the timeline.
#include <map>

#include <gtest/gtest.h>

#include "apps/dashboard_model.hpp"

namespace cafraft {
namespace {

struct sample_builder {
  cluster_sample s;

  sample_builder(int64_t t) {
    s.unix_ms = t;
    s.served_by = "n1";
  }
  sample_builder& up(const std::string& id, const std::string& role, uint64_t term, uint64_t commit,
                     uint64_t applied, const std::string& leader, bool learner = false) {
    member_sample m;
    m.member.set_id(id);
    m.member.set_address(id + ":7000");
    m.member.set_learner(learner);
    m.reachable = true;
    m.status.set_id(id);
    m.status.set_role(role);
    m.status.set_term(term);
    m.status.set_commit_index(commit);
    m.status.set_applied_index(applied);
    m.status.set_last_log_index(commit);
    m.status.set_leader_id(leader);
    s.members.push_back(std::move(m));
    return *this;
  }
  sample_builder& down(const std::string& id) {
    member_sample m;
    m.member.set_id(id);
    m.error = "unreachable: cannot reach " + id;
    s.members.push_back(std::move(m));
    return *this;
  }
  // An inspection of the last member's actor of `kind`, with these numeric fields.
  sample_builder& inspected(const std::string& kind, std::map<std::string, uint64_t> fields) {
    pb::Inspection i;
    i.set_name(s.members.back().member.id() + "/" + kind);
    i.set_kind(kind);
    for (auto& [k, v] : fields)
      (*i.mutable_fields())[k] = std::to_string(v);
    s.members.back().inspected.push_back(i);
    return *this;
  }
  // The last member's storage: `writes` fsynced writes that took `us` in all.
  sample_builder& storage(uint64_t writes, uint64_t us) {
    return inspected("storage", {{"group_commits", writes}, {"sum_write_us", us}});
  }
  // The last member's leader role: `answered` writes that took `us` in all.
  sample_builder& leading(uint64_t answered, uint64_t us) {
    return inspected("leader", {{"writes_answered", answered}, {"write_answer_us_sum", us}});
  }
};

std::vector<std::string> texts(const nlohmann::json& history) {
  std::vector<std::string> out;
  for (auto& e : history["events"])
    out.push_back(e["text"]);
  return out;
}

TEST(DashboardModel, HealthAndLagOfEachMember) {
  dashboard_model m;
  m.add(sample_builder{1000}
            .up("n1", "leader", 3, 5000, 5000, "n1")
            .up("n2", "follower", 3, 5000, 4990, "n1")
            .up("n3", "follower", 3, 3000, 3000, "n1")
            .down("n4")
            .s);
  auto c = m.cluster();
  EXPECT_EQ(c["leader"], "n1");
  EXPECT_EQ(c["term"], 3);
  auto& ms = c["members"];
  ASSERT_EQ(ms.size(), 4u);
  EXPECT_EQ(ms[0]["health"], "healthy");
  EXPECT_EQ(ms[1]["lag"], 10);
  EXPECT_EQ(ms[1]["health"], "healthy");
  EXPECT_EQ(ms[2]["lag"], 2000);
  EXPECT_EQ(ms[2]["health"], "lagging");
  EXPECT_EQ(ms[3]["health"], "unreachable");
  EXPECT_FALSE(ms[3]["reachable"]);
}

TEST(DashboardModel, RatesComeFromTheCountersGrowthBetweenSamples) {
  dashboard_model m;
  m.add(sample_builder{1000}
            .up("n1", "leader", 1, 10, 10, "n1")
            .storage(10, 5000)
            .leading(8, 16000)
            .up("n2", "follower", 1, 10, 10, "n1")
            .storage(10, 10000)
            .s);
  // Two seconds later: 100 writes answered in 200 ms in all; n1 fsynced 50 times in 50 ms.
  m.add(sample_builder{3000}
            .up("n1", "leader", 1, 110, 110, "n1")
            .storage(60, 55000)
            .leading(108, 216000)
            .up("n2", "follower", 1, 110, 110, "n1")
            .storage(10, 10000)
            .s);
  auto pts = m.history()["points"];
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_TRUE(pts[0]["writes_per_s"].is_null()) << "a rate from one sample";
  EXPECT_DOUBLE_EQ(pts[1]["writes_per_s"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(pts[1]["commit_ms"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(pts[1]["fsync_ms"]["n1"].get<double>(), 1.0);
  EXPECT_FALSE(pts[1]["fsync_ms"].contains("n2")) << "n2 wrote nothing: no latency";
  // A new leader's counters start at zero: no rate across the change.
  m.add(sample_builder{4000}
            .up("n1", "follower", 2, 110, 110, "n2")
            .storage(60, 55000)
            .up("n2", "leader", 2, 111, 111, "n2")
            .storage(11, 11000)
            .leading(0, 0)
            .s);
  pts = m.history()["points"];
  EXPECT_TRUE(pts[2]["writes_per_s"].is_null());
}

TEST(DashboardModel, TheTimelineHasLeadersMembershipAndLostMembers) {
  dashboard_model m{600, 200};
  m.add(sample_builder{1000}.up("n1", "follower", 1, 0, 0, "").up("n2", "follower", 1, 0, 0, "").s);
  m.add(
      sample_builder{2000}.up("n1", "leader", 1, 1, 1, "n1").up("n2", "follower", 1, 1, 1, "n1").s);
  m.add(
      sample_builder{3000}.up("n1", "leader", 1, 2, 2, "n1").up("n2", "follower", 1, 2, 2, "n1").s);
  m.add(sample_builder{4000}
            .up("n1", "leader", 1, 3, 3, "n1")
            .up("n2", "follower", 1, 3, 3, "n1")
            .up("n3", "follower", 1, 3, 3, "n1", true)
            .s);
  m.add(sample_builder{5000}
            .up("n1", "leader", 1, 4, 4, "n1")
            .down("n2")
            .up("n3", "follower", 1, 4, 4, "n1")
            .s);
  m.add(sample_builder{6000}.down("n1").up("n3", "leader", 2, 5, 5, "n3").s);
  auto t = texts(m.history());
  std::vector<std::string> want{"the dashboard of n1 starts watching 2 members",
                                "no leader (term 1)",
                                "n1 leads term 1",
                                "n3 joined as a learner",
                                "n3 became a voter",
                                "n2 lost: unreachable: cannot reach n2",
                                "n3 leads term 2",
                                "n2 left the cluster",
                                "n1 lost: unreachable: cannot reach n1"};
  EXPECT_EQ(t, want);
}

TEST(DashboardModel, KeepsOnlyTheLastPointsAndEvents) {
  dashboard_model m{5, 3};
  for (int i = 0; i < 20; ++i)
    m.add(sample_builder{1000 * (i + 1)}
              .up("n1", "leader", static_cast<uint64_t>(i + 1), 1, 1, "n1")
              .s);
  auto h = m.history();
  EXPECT_EQ(h["points"].size(), 5u);
  ASSERT_EQ(h["events"].size(), 3u);
  EXPECT_EQ(h["events"][2]["text"], "n1 leads term 20");
}

} // namespace
} // namespace cafraft

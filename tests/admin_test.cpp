// The admin metrics (apps/admin.hpp): the Prometheus text a node serves passes a format check,
// and the check itself catches malformed text.
#include <gtest/gtest.h>

#include "apps/admin.hpp"

namespace {

namespace pb = cafraft::pb;

TEST(AdminMetrics, RenderedMetricsPassTheFormatCheck) {
  pb::NodeStatus st;
  st.set_id("n\"1");
  st.set_role("leader");
  st.set_term(7);
  st.set_commit_index(40);
  st.set_applied_index(39);
  st.set_last_log_index(42);
  pb::Inspection leader;
  leader.set_kind("leader");
  leader.set_handled(100);
  (*leader.mutable_fields())["peer.n2.match"] = "40";
  (*leader.mutable_fields())["peer.n3.match"] = "12";
  pb::Inspection storage;
  storage.set_kind("storage");
  storage.set_mailbox(2);
  (*storage.mutable_fields())["write_us_le_100"] = "1";
  (*storage.mutable_fields())["write_us_le_1000"] = "5";
  (*storage.mutable_fields())["group_commits"] = "6";
  (*storage.mutable_fields())["sum_write_us"] = "4200";
  auto text = cafraft::render_metrics(st, {leader, storage});
  EXPECT_EQ(cafraft::check_prometheus_text(text), "") << text;
  EXPECT_NE(text.find("cafraft_term{node=\"n\\\"1\"} 7"), std::string::npos) << text;
  EXPECT_NE(text.find("cafraft_peer_lag_entries{node=\"n\\\"1\",peer=\"n3\"} 30"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cafraft_storage_write_seconds_bucket{node=\"n\\\"1\",le=\"+Inf\"} 6"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cafraft_actor_mailbox_messages{node=\"n\\\"1\",kind=\"storage\"} 2"),
            std::string::npos)
      << text;
}

TEST(AdminMetrics, WireMetricsPassTheFormatCheckAndNameEveryFault) {
  auto text = cafraft::render_metrics(pb::NodeStatus{}, {}) + cafraft::render_wire_metrics("n1");
  EXPECT_EQ(cafraft::check_prometheus_text(text), "") << text;
  for (size_t i = 0; i < cafraft::wire::fault_count; ++i) {
    auto reason = cafraft::wire::to_string(static_cast<cafraft::wire::fault>(i));
    EXPECT_NE(text.find(std::string{"cafraft_wire_connections_closed_total{node=\"n1\",reason=\""} +
                        reason + "\"}"),
              std::string::npos)
        << reason;
  }
}

TEST(AdminMetrics, FormatCheckCatchesMalformedText) {
  using cafraft::check_prometheus_text;
  EXPECT_EQ(check_prometheus_text("# TYPE a gauge\na 1\n"), "");
  EXPECT_NE(check_prometheus_text("a 1\n"), "");                      // no TYPE first
  EXPECT_NE(check_prometheus_text("# TYPE a gauge\na{x=1} 1\n"), ""); // unquoted label
  EXPECT_NE(check_prometheus_text("# TYPE a gauge\na one\n"), "");    // not a number
  EXPECT_NE(check_prometheus_text("# TYPE a nonsense\na 1\n"), "");   // unknown type
  EXPECT_NE(check_prometheus_text("# TYPE a gauge\n# TYPE a gauge\n"), "");
  EXPECT_EQ(check_prometheus_text("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\n"
                                  "h_count 2\n"),
            "");
}

} // namespace

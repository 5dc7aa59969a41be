// The typed node handle (messages/node_handle.hpp): every request it declares is taken by a node
// and answered with the declared type. (That an undeclared request does not compile is checked
// by the ctest TypedHandle.AnUndeclaredRequestDoesNotCompile, tests/typed/.)
#include <gtest/gtest.h>

#include <cafraft/messages/node_handle.hpp>

#include "cluster_test.hpp"

namespace cafraft::test {
namespace {

/// Sends `xs` through the typed handle (harness.hpp, ask_with): the response handler has the
/// declared type, so a mismatch with the declaration does not compile, and an answer of
/// another type at run time arrives as CAF's unexpected_response error.
template <class Resp, class... Ts>
std::shared_ptr<outcome<Resp>> ask_typed(caf::actor_system& sys, node_handle node, Ts... xs) {
  return ask_with<Resp>(sys, node, std::chrono::seconds{1}, std::move(xs)...);
}

class NodeHandleTest : public cluster_test {
protected:
  template <class Resp> Resp answered(std::shared_ptr<outcome<Resp>> o, const char* what) {
    d.run_until([&] { return o->done; }, 2000ms);
    EXPECT_TRUE(o->done) << what << ": no answer";
    EXPECT_TRUE(o->value) << what << ": " << (o->value ? "" : render(o->value.error()));
    return o->value ? *o->value : Resp{};
  }

  /// A failure is fine here, but it must be one of ours, never an answer of another type.
  template <class Resp>
  void answered_or_refused(std::shared_ptr<outcome<Resp>> o, const char* what) {
    d.run_until([&] { return o->done; }, 2000ms);
    ASSERT_TRUE(o->done) << what << ": no answer";
    if (!o->value) {
      EXPECT_EQ(o->value.error().category(), error_category)
          << what << ": " << render(o->value.error());
    }
  }
};

TEST_F(NodeHandleTest, EveryDeclaredRequestIsAnsweredWithItsDeclaredType) {
  cluster c{sys, 3, 1, nullptr};
  std::string leader;
  ASSERT_TRUE(d.run_until([&] { return !(leader = agreed_leader(c, d)).empty(); }, 3000ms));
  auto node = typed(c.nodes.at(leader));
  std::string other = leader == "n1" ? "n2" : "n1";
  auto follower = typed(c.nodes.at(other));

  EXPECT_GT(answered(ask_typed<pb::WriteResponse>(sys, node, put("k", "1")), "put").index(), 0u);
  pb::CasRequest cas;
  cas.set_key("k");
  cas.set_expected("1");
  cas.set_value("2");
  answered(ask_typed<pb::WriteResponse>(sys, node, cas), "cas");
  pb::ProposeRequest propose; // the KV store refuses unknown bytes before they are logged
  answered_or_refused(ask_typed<pb::WriteResponse>(sys, node, propose), "propose");
  auto got = answered(ask_typed<pb::GetResponse>(sys, node, get("k")), "get");
  EXPECT_EQ(got.value(), "2");
  pb::DeleteRequest del;
  del.set_key("k");
  answered(ask_typed<pb::WriteResponse>(sys, node, del), "delete");
  pb::QueryRequest query; // a KV query: a pb::KvQuery, answered as the store encodes it
  pb::KvQuery kq;
  kq.set_key("k");
  query.set_query(kq.SerializeAsString());
  answered(ask_typed<pb::QueryResponse>(sys, node, query), "query");
  pb::BatchRequest batch;
  *batch.add_items()->mutable_put() = put("b", "1");
  EXPECT_EQ(answered(ask_typed<pb::BatchResponse>(sys, node, batch), "batch").results_size(), 1);

  EXPECT_EQ(answered(ask_typed<pb::NodeStatus>(sys, node, status_atom::value), "status").role(),
            "leader");
  EXPECT_EQ(answered(ask_typed<pb::LeaderInfo>(sys, follower, leader_atom::value), "leader").id(),
            leader);
  EXPECT_EQ(answered(ask_typed<pb::LeaderInfo>(sys, follower, wait_leader_atom::value, uint64_t{0}),
                     "wait_leader")
                .id(),
            leader);
  EXPECT_FALSE(
      answered(ask_typed<pb::ActorDirectory>(sys, node, directory_atom::value), "directory")
          .actors()
          .empty());
  pb::InspectRequest inspect;
  inspect.set_name(leader + "/storage");
  answered(ask_typed<pb::Inspection>(sys, node, inspect), "inspect");
  answered(ask_typed<pb::LogLines>(sys, node, recent_log_atom::value, uint32_t{10}), "recent_log");
  // A node of an in-process cluster is a process of one group: its own.
  auto groups = answered(ask_typed<pb::GroupList>(sys, node, groups_atom::value), "groups");
  ASSERT_EQ(groups.groups_size(), 1);
  EXPECT_EQ(groups.groups(0).group(), 0u);
  EXPECT_EQ(groups.groups(0).role(), "leader");
  pb::CreateGroupRequest create; // it has no group table: refused, typed
  create.set_group(7);
  answered_or_refused(ask_typed<pb::GroupList>(sys, node, create), "create group");
  pb::RemoveGroupRequest remove;
  remove.set_group(7);
  answered_or_refused(ask_typed<pb::GroupList>(sys, node, remove), "remove group");
  answered_or_refused(ask_typed<pb::MembershipResponse>(sys, follower, joined_atom::value),
                      "joined");
  auto snap =
      answered(ask_typed<pb::SnapshotMeta>(sys, node, pb::SnapshotNowRequest{}), "snapshot");
  EXPECT_GT(snap.index(), 0u);
  pb::SnapshotReadRequest read;
  read.set_max(1u << 20);
  auto chunk = answered(ask_typed<pb::SnapshotChunk>(sys, node, read), "snapshot read");
  EXPECT_EQ(chunk.meta().index(), snap.index());
  EXPECT_EQ(chunk.data().size(), snap.size());

  // A subscriber hears of the leadership change below (reacts_to: no answer).
  auto events = std::make_shared<std::vector<pb::LeadershipEvent>>();
  auto subscriber = sys.spawn([events](caf::event_based_actor*) -> caf::behavior {
    return {[events](pb::LeadershipEvent& e) { events->push_back(std::move(e)); }};
  });
  caf::anon_send(follower, subscribe_atom::value, subscriber);
  caf::anon_send(follower, subscribe_atom::value, subscriber, true);
  d.run();

  pb::TransferLeadershipRequest transfer;
  transfer.set_target(other);
  EXPECT_EQ(answered(ask_typed<pb::LeaderInfo>(sys, node, transfer), "transfer").id(), other);
  std::string now;
  ASSERT_TRUE(d.run_until([&] { return (now = agreed_leader(c, d)) == other; }, 3000ms));
  EXPECT_GT(answered(ask_typed<uint64_t>(sys, follower, step_down_atom::value), "step_down"), 0u);
  EXPECT_FALSE(events->empty()) << "the subscriber heard of the new leader";

  ASSERT_TRUE(d.run_until([&] { return !(now = agreed_leader(c, d)).empty(); }, 3000ms));
  pb::LeaveRequest leave;
  leave.set_id(now == "n3" ? "n2" : "n3");
  answered(ask_typed<pb::MembershipResponse>(sys, typed(c.nodes.at(now)), leave), "leave");
  pb::JoinRequest join; // an id that is a member at another address: refused, typed
  join.set_id(now);
  join.set_address("elsewhere:1");
  answered_or_refused(ask_typed<pb::MembershipResponse>(sys, typed(c.nodes.at(now)), join), "join");
  caf::anon_send_exit(subscriber, caf::exit_reason::user_shutdown);
}

} // namespace
} // namespace cafraft::test

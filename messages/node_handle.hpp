// The typed handle of a node: every request a node takes, with its response type
// (messages/api.hpp says what each means). A request the node does not take, or a response
// handler of the wrong type, does not compile:
//
//   cafraft::node_handle node = cafraft::typed(*cafraft::spawn_node(sys, cfg));
//   self->request(node, 1s, put).then([](cafraft::pb::WriteResponse& w) { ... });
//
// It names a local node actor, or a dialer that reaches a node over the network
// (actors/peer.hpp): both take the same requests. Failures arrive as caf::errors of the
// cafraft category (messages/errors.hpp). The untyped caf::actor stays for internal wiring and
// the inspection console.
#pragma once

#include <cstdint>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cafraft/messages/atoms.hpp>
#include <cafraft/messages/pb_inspect.hpp>

namespace cafraft {

using node_handle = caf::typed_actor<
    // Writes: answered once committed and applied.
    caf::replies_to<pb::PutRequest>::with<pb::WriteResponse>,
    caf::replies_to<pb::DeleteRequest>::with<pb::WriteResponse>,
    caf::replies_to<pb::CasRequest>::with<pb::WriteResponse>,
    caf::replies_to<pb::ProposeRequest>::with<pb::WriteResponse>,
    // A client session (docs/sessions.md): the WriteResponse's index is its id.
    caf::replies_to<pb::OpenSessionRequest>::with<pb::WriteResponse>,
    // Reads: linearizable unless stale is set.
    caf::replies_to<pb::GetRequest>::with<pb::GetResponse>,
    caf::replies_to<pb::QueryRequest>::with<pb::QueryResponse>,
    caf::replies_to<pb::BatchRequest>::with<pb::BatchResponse>,
    // The node and its leader.
    caf::replies_to<status_atom>::with<pb::NodeStatus>,
    caf::replies_to<leader_atom>::with<pb::LeaderInfo>,
    caf::replies_to<wait_leader_atom, uint64_t>::with<pb::LeaderInfo>,
    caf::reacts_to<subscribe_atom, caf::actor>, caf::reacts_to<subscribe_atom, caf::actor, bool>,
    // Membership and leadership.
    caf::replies_to<pb::JoinRequest>::with<pb::MembershipResponse>,
    caf::replies_to<pb::LeaveRequest>::with<pb::MembershipResponse>,
    caf::replies_to<joined_atom>::with<pb::MembershipResponse>,
    caf::replies_to<pb::TransferLeadershipRequest>::with<pb::LeaderInfo>,
    caf::replies_to<step_down_atom>::with<uint64_t>,
    // Inspection.
    caf::replies_to<directory_atom>::with<pb::ActorDirectory>,
    caf::replies_to<pb::InspectRequest>::with<pb::Inspection>,
    caf::replies_to<recent_log_atom, uint32_t>::with<pb::LogLines>,
    // The groups of the process (docs/groups.md); creating and removing them: group 0's node.
    caf::replies_to<groups_atom>::with<pb::GroupList>,
    caf::replies_to<pb::CreateGroupRequest>::with<pb::GroupList>,
    caf::replies_to<pb::RemoveGroupRequest>::with<pb::GroupList>,
    // Backups (docs/deployment.md).
    caf::replies_to<pb::SnapshotNowRequest>::with<pb::SnapshotMeta>,
    caf::replies_to<pb::SnapshotReadRequest>::with<pb::SnapshotChunk>,
    // Watches (docs/watches.md): pb::WatchBatch requests follow to the watcher.
    caf::replies_to<watch_atom, pb::WatchRequest, caf::actor>::with<pb::WatchStarted>>;

/// The typed handle of a node actor (from spawn_node, join_cluster) or of a dialer.
inline node_handle typed(const caf::actor& node) {
  return caf::actor_cast<node_handle>(node);
}

/// The untyped handle, for internal wiring (connect_peer, the console).
inline caf::actor untyped(const node_handle& node) {
  return caf::actor_cast<caf::actor>(node);
}

} // namespace cafraft

// The messages a node actor understands. Send them with request() and a timeout, best through
// the typed handle (messages/node_handle.hpp: cafraft::node_handle, cafraft::typed()), which
// declares each request below with its response type.
//
//   pb::PutRequest      -> pb::WriteResponse   write; answered after commit and apply. Every
//                                              write may carry a client session's tag: a
//                                              retry with it applies once (docs/sessions.md)
//   pb::DeleteRequest   -> pb::WriteResponse
//   pb::CasRequest      -> pb::WriteResponse   compare and swap; result: pb::KvResult
//   pb::ProposeRequest  -> pb::WriteResponse   opaque bytes for a user's state machine; the
//                                              result is what its apply() returned
//   pb::OpenSessionRequest -> pb::WriteResponse  a client session; its id is the index
//   pb::GetRequest      -> pb::GetResponse     by its read policy (docs/reads.md):
//                                              linearizable, lease, follower or stale (after
//                                              min_index); a range read with range_end
//   pb::QueryRequest    -> pb::QueryResponse   a query for a user's state machine, answered
//                                              in its own format (state_machine::query); the
//                                              same read policies
//   watch_atom, pb::WatchRequest, caf::actor watcher -> pb::WatchStarted   every change of a
//                                              key range, in commit order, as pb::WatchBatch
//                                              requests to the watcher (docs/watches.md)
//   status_atom         -> pb::NodeStatus      role, term, leader, indexes, members
//   groups_atom         -> pb::GroupList       the status of every group of the process
//                                              (docs/groups.md); a node of one group: its own
//   pb::CreateGroupRequest -> pb::GroupList    group 0's node: starts a group's replica in
//                                              this process (node_config::groups)
//   pb::RemoveGroupRequest -> pb::GroupList    group 0's node: stops one, deletes its data
//   pb::BatchRequest    -> pb::BatchResponse   many of the requests above in one message, each
//                                              answered as if sent alone (its result or error)
//
// Membership and leadership (docs/membership.md):
//   pb::JoinRequest     -> pb::MembershipResponse   add a node (learner, promoted when caught up)
//   pb::LeaveRequest    -> pb::MembershipResponse   remove a node (the leader too)
//   leader_atom         -> pb::LeaderInfo      the leader this node knows (cached)
//   wait_leader_atom, uint64_t term -> pb::LeaderInfo   once a leader of a later term is known
//   subscribe_atom, caf::actor      -> (none)  pb::LeadershipEvent requests to the subscriber
//   subscribe_atom, caf::actor, bool membership -> (none)  the same, with MEMBERSHIP_CHANGED
//                                      events when `membership`
//   pb::TransferLeadershipRequest   -> pb::LeaderInfo   leader only; empty target: best voter
//   step_down_atom      -> uint64_t            leader only; the term it left
//   joined_atom         -> pb::MembershipResponse   a joining node: once it was admitted
//
// Backups (docs/deployment.md, "Backup and restore"):
//   pb::SnapshotNowRequest  -> pb::SnapshotMeta   the state machine snapshots now; answered
//                                                 once the snapshot is durable
//   pb::SnapshotReadRequest -> pb::SnapshotChunk  a piece of the current snapshot (at most
//                                                 4 MiB), with its meta and the cluster id
//
// Inspection (docs/inspection.md):
//   directory_atom      -> pb::ActorDirectory  the node's actors
//   pb::InspectRequest  -> pb::Inspection      one actor's state
//   recent_log_atom, uint32_t max -> pb::LogLines   the node's last log lines
//
// Failures are caf::error values of the "cafraft" category (messages/errors.hpp): not_leader
// with the leader's id and address, unknown_leader, leadership_lost, overloaded,
// invalid_request, config_change_in_progress, self_join, missing_data, duplicate_member,
// removed_member, session_expired, watch_overflow, compacted, ...; and on the client's side
// unreachable and connection_lost.
//
// Between nodes (one way; responses are messages of their own):
//   pb::RequestVote, pb::RequestVoteResponse, pb::AppendEntries, pb::AppendEntriesResponse,
//   pb::InstallSnapshot, pb::InstallSnapshotResponse, pb::TimeoutNow, and for follower reads
//   pb::ReadIndexRequest, pb::ReadIndexResponse
//
// Wiring (one way): peer_handle_atom, std::string peer_id, caf::actor peer_node
//   tells a node where to reach peer `peer_id` (a local actor, or the connection a listener
//   accepted from it: actors/connection.hpp). Taken only from the node's own process.
//
// Over the network every message above travels as a frame of messages/wire.proto
// (docs/protocol.md); an atom request has a message of its own there.
//
// Dialers (actors/peer.hpp, how tools and clients reach a node by address) also take, one way:
//   connection_watch_atom   the sender is told (connection_lost_atom, caf::actor dialer)
//                           whenever the dialer's connection breaks: the requests it delegated
//                           will get no answer; fail them now with errc::connection_lost
#pragma once

#include <cafraft/messages/atoms.hpp>
#include <cafraft/messages/errors.hpp>
#include <cafraft/messages/pb_inspect.hpp>

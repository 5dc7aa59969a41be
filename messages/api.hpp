// The messages a node actor understands. Send them with request() and a timeout.
//
//   pb::PutRequest      -> pb::WriteResponse   write; answered after commit and apply
//   pb::DeleteRequest   -> pb::WriteResponse
//   pb::ProposeRequest  -> pb::WriteResponse   opaque bytes for a user's state machine
//   pb::GetRequest      -> pb::GetResponse     linearizable (ReadIndex) unless stale is set
//   status_atom         -> pb::NodeStatus      role, term, leader, indexes, members
//
// Failures are caf::error values of the "cafraft" category (messages/errors.hpp): not_leader
// with the leader's id and address, unknown_leader, leadership_lost, overloaded,
// invalid_request, ...
//
// Between nodes (one way; responses are messages of their own):
//   pb::RequestVote, pb::RequestVoteResponse, pb::AppendEntries, pb::AppendEntriesResponse,
//   pb::InstallSnapshot, pb::InstallSnapshotResponse
//
// Wiring (one way): peer_handle_atom, std::string peer_id, caf::actor peer_node
//   tells a node where to reach peer `peer_id` (a local actor or a remote proxy).
#pragma once

#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/pb_inspect.hpp"

// The node actor: a Raft node's stable address. Peers, clients and tools hold this handle; it
// routes every message to the node's current role actor (follower, candidate or leader) and
// starts the next role when the current one hands over. Raft messages and clients' requests
// pass straight to the role as they are enqueued (node_actor, actors/node_state.hpp). Its
// children, all linked to it:
//
//   node n1
//   +-- role        follower | candidate | leader (one at a time, a new actor per role/term)
//   +-- peer-n2     one per other member: the connection to that member
//   +-- peer-n3
//   +-- storage     the only writer of the log and hard state (own thread by default)
//   +-- state_machine  applies committed entries, answers reads
//
// Stopping the node (send_exit) stops all of them. The messages it understands are listed in
// messages/api.hpp.
#pragma once

#include <map>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include <cafraft/actors/change_request.hpp>
#include <cafraft/messages/node_handle.hpp>
#include <cafraft/runtime/config.hpp>

namespace cafraft {

/// Loads the node's state from cfg.storage and spawns it. typed() (messages/node_handle.hpp)
/// gives its typed handle, which declares every request it takes. Fails with invalid_request when
/// the configuration is invalid, storage_failed when the stored state cannot be read,
/// removed_member when the cluster removed this node. A node with data restarts from it: the
/// configuration in its log applies, cfg.members only seeds a new cluster.
caf::expected<caf::actor> spawn_node(caf::actor_system& sys, node_config cfg);

/// Safe join (docs/membership.md): starts a node that joins an existing cluster through
/// `opts.contacts`.
///   - joining through its own address: self_join, nothing started;
///   - the node has data: it restarts from it and sends no membership request;
///   - otherwise it starts empty and asks to join; it takes no Raft message until it is
///     admitted (as a learner, promoted to voter once caught up). A refusal stops the node with
///     its reason: missing_data (its id is a member that lost its data: remove it first),
///     duplicate_member (the id is a member at another address), or timeout.
/// Ask the node `joined_atom` for the outcome (pb::MembershipResponse or the error).
caf::expected<caf::actor> join_cluster(caf::actor_system& sys, node_config cfg, join_options opts);

/// Lists a user's own actor in the node's actor directory as "<node id>/<name>" (local actors
/// only). It must answer inspect_atom with a pb::Inspection (actors/inspect.hpp has
/// make_inspection()); it leaves the directory when it terminates. docs/inspection.md.
void enlist_actor(const caf::actor& node, const std::string& name, const std::string& kind,
                  const caf::actor& who);

/// Many groups in one process (docs/groups.md): the configuration of group `group`'s replica in
/// the process whose own node (group 0) runs with `process`. The same id, timeouts, TLS and
/// state machine; the data in `<process.data_dir>/g<group>`; log lines under the logger
/// `<process logger>.g<group>`, prefixed "[g<group>]"; `members` as the group's first
/// configuration (empty: those of `process`). `process.groups` must be set: the group shares
/// its table and the connections of group 0. Leaders spread over the processes: the replica on
/// the (group mod n)-th of the n members by id keeps `process.priority`, the others get at most
/// 25 (node_config::priority), so that it usually wins the group's elections.
node_config group_config(const node_config& process, uint64_t group,
                         std::vector<member> members = {});

/// Spawns group `group`'s replica (group_config()): a node like any other, stopped with
/// send_exit. Fails with invalid_request for group 0, without a group table, or when the
/// process's node keeps its log in memory (`process.storage`: give each group its own
/// node_config instead).
caf::expected<caf::actor> spawn_group(caf::actor_system& sys, const node_config& process,
                                      uint64_t group, std::vector<member> members = {});

/// Tells `node` where to reach member `peer_id`.
void connect_peer(const caf::actor& node, const std::string& peer_id, const caf::actor& peer_node);

/// Connects every node of an in-process cluster to every other (id -> node actor).
void connect_all(const std::map<std::string, caf::actor>& nodes);

} // namespace cafraft

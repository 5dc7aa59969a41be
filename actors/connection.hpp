// Connections between processes (docs/protocol.md). cafraft owns its wire: every connection is
// a CAF broker (caf::io) that speaks length-prefixed protobuf frames (messages/wire.proto),
// with mutual TLS when certificates are given, a handshake first, and hard limits. CAF's
// middleman carries the sockets but never publishes an actor: BASP is not reachable.
//
// A connection actor stands for the other side. Messages sent to it (one way or as requests)
// go out as frames; the answers to requests come back as answers. Frames from the other side
// go to the local node: its requests are asked of the node and answered, its Raft messages
// (only from a node) are passed to it. A client's connection passes LeadershipEvent frames to
// the actors that subscribed through it. It ends (and its monitors see why) when the
// connection closes or breaks the protocol.
//
//   dial_connection()  the side that connects: tells `owner` (wire_up_atom, std::string
//                      node id of the other side) once the handshake is done
//   listen()           a listener: forks a connection actor for every connection it accepts,
//                      within the limits; a node on the other side is announced to the local
//                      node with (peer_handle_atom, id, connection)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/io/broker.hpp>
#include <spdlog/logger.h>

#include <cafraft/actors/context.hpp>
#include <cafraft/actors/group_table.hpp>
#include <cafraft/runtime/config.hpp>
#include <cafraft/runtime/tls.hpp>
#include <cafraft/runtime/wire.hpp>

namespace cafraft {

struct connection_options {
  /// This side: the cluster (empty: any), the node id (empty: a client), and for the side
  /// that connects, the node it means to reach (empty: any).
  wire::identity self;
  wire::limits limits;
  /// Mutual TLS (null: plaintext).
  std::shared_ptr<tls_context> tls;
  /// Where the other side's requests and messages go (null: this side serves none).
  caf::actor node;
  /// The members that node knows: Raft messages from any other node are dropped (null: those
  /// of `node`, a node actor of this process, known_members_of; no check for other actors).
  std::shared_ptr<known_members> members;
  std::shared_ptr<spdlog::logger> log;
  /// The group this side's requests are for when their sender names none (a client's, e.g.
  /// cafraftctl --group), and the process's groups: frames of the other side go to the group
  /// they name (null: all to `node`, and a frame for another group is refused). docs/groups.md.
  uint64_t group = 0;
  std::shared_ptr<group_table> groups;
};

/// Connects to host:port without blocking. The actor tells `owner` (wire_up_atom, the other
/// side's node id) when the handshake is done, and ends when it fails or the connection closes.
caf::expected<caf::actor> dial_connection(caf::actor_system& sys, const std::string& host,
                                          uint16_t port, connection_options opts, caf::actor owner);

/// The connection actor of a connection `listener` accepted (actors/listener.cpp): it tells the
/// listener (wire_up_atom, id) once its handshake is done.
caf::actor fork_connection(caf::io::broker* listener, caf::io::connection_handle hdl,
                           connection_options opts);

/// Listens on host:port (port 0: any free one). Returns the listener and its port.
caf::expected<std::pair<caf::actor, uint16_t>>
listen(caf::actor_system& sys, const std::string& host, uint16_t port, connection_options opts);

/// Serves `node` to other processes, nodes and clients, at `address` (HOST:PORT; port 0: any
/// free one), as `cfg` says: its id, its cluster id and its TLS files. Returns the listener (it
/// stops with the node) and the port.
caf::expected<std::pair<caf::actor, uint16_t>>
serve_node(caf::actor_system& sys, const caf::actor& node, const node_config& cfg,
           const std::string& address, wire::limits limits = {});

} // namespace cafraft

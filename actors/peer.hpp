// The peer actor: one per remote member of a node. It holds the connection to that member's
// node actor (a local handle or a remote proxy) and carries Raft messages to it.
//
//   receives  peer_handle_atom, caf::actor -> where the member is reached now (monitored)
//             any Raft message -> passed on to the member as it is enqueued, in the
//             sender's thread and as sent by this peer, without being handled here
//             (actors/pass_on.hpp); dropped (and counted) while no handle is known: Raft
//             retries cover the loss
//             any request -> delegated to the member (its answer goes straight to the
//             requester), or answered `unreachable` while not connected
//             peer_stats_atom -> (uint64_t sent, uint64_t dropped, bool connected)
//             connection_watch_atom (from a local actor) -> nothing now; whenever the
//             connection breaks, the sender gets (connection_lost_atom, caf::actor this_peer):
//             the requests it had delegated through this peer will get no answer (the
//             batcher and cafraft-bench fail theirs at once with errc::connection_lost)
//
// Dialing (processes): the peer connects to the member's address itself, with cafraft's own
// protocol (actors/connection.hpp, docs/protocol.md): a non-blocking connect, a handshake that
// checks the cluster and that the node there is the member, mutual TLS when files are given,
// and exponential backoff with jitter when it fails or drops. Between two nodes only the one
// with the smaller id dials; the other learns of the connection from its listener. The same
// actor, spawned with spawn_dialer(), is how tools and clients reach a node by address.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/local_actor.hpp>
#include <spdlog/logger.h>

#include <cafraft/actors/group_table.hpp>
#include <cafraft/runtime/tls.hpp>
#include <cafraft/runtime/wire.hpp>

namespace cafraft {

struct dial_options {
  std::string address;    // host:port; empty: wait for peer_handle_atom (in-process wiring)
  tls_files tls;          // mutual TLS with these files (empty: plaintext)
  std::string cluster_id; // the cluster expected there (empty: any)
  /// Connecting and the handshake give up after this; retries back off up to backoff_max.
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{2000};
  wire::limits limits;
  /// The Raft group whose messages this peer carries, and the process's group table
  /// (node_config::group, groups; docs/groups.md). A peer of a group other than 0 marks the
  /// connection it is given as a lane of its group; a dialer's requests are for `group`.
  uint64_t group = 0;
  std::shared_ptr<group_table> groups;
};

caf::actor spawn_peer(caf::local_actor* node, std::string local_id, std::string peer_id,
                      std::shared_ptr<spdlog::logger> log, dial_options dial = {});

/// A free-standing peer that dials `opts.address`: a proxy for tools and change clients.
caf::actor spawn_dialer(caf::actor_system& sys, dial_options opts,
                        std::shared_ptr<spdlog::logger> log);

/// Splits "host:port"; false when it is not one.
bool split_address(const std::string& address, std::string& host, uint16_t& port);

} // namespace cafraft

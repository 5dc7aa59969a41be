// The peer actor: one per remote member of a node. It holds the connection to that member's
// node actor (a local handle or a remote proxy) and carries Raft messages to it.
//
//   receives  peer_handle_atom, caf::actor -> where the member is reached now (monitored)
//             any Raft message -> forwarded to the member, or dropped (and counted) while no
//             handle is known; Raft retries cover the loss
//             peer_stats_atom -> (uint64_t sent, uint64_t dropped, bool connected)
#pragma once

#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/local_actor.hpp>
#include <spdlog/logger.h>

namespace cafraft {

caf::actor spawn_peer(caf::local_actor* node, std::string local_id, std::string peer_id,
                      std::shared_ptr<spdlog::logger> log);

} // namespace cafraft

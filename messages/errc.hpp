// The codes of the errors callers of cafraft see, without CAF: the Raft core (runtime/core.hpp)
// names its failures with them, and messages/errors.hpp makes them CAF errors.
#pragma once

#include <cstdint>

namespace cafraft {

enum class errc : uint8_t {
  /// Not an error.
  none = 0,
  /// Definite. This node is not the leader; the context names the leader (id, address).
  not_leader,
  /// Definite. No leader is known right now (an election is running): retry shortly.
  unknown_leader,
  /// Indefinite. The leader lost its leadership while the request was pending; a write may
  /// still have been committed by the next leader.
  leadership_lost,
  /// Definite. The leader could not append the entry to its log.
  append_failed,
  /// Indefinite. The entry was appended but could not be confirmed committed.
  commit_failed,
  /// Definite. Another configuration change is still in progress.
  config_change_in_progress,
  /// Definite. A node asked to join a cluster through itself.
  self_join,
  /// Definite. The node id is a member but the node has no data directory.
  missing_data,
  /// Definite. Another member already uses this id at a different address.
  duplicate_member,
  /// Definite. This node was removed from the cluster.
  removed_member,
  /// Indefinite. No answer in time; the request may or may not have taken effect.
  timeout,
  /// Definite. Too many requests are pending; retry later.
  overloaded,
  /// Indefinite. Storage failed and the node stopped; a write it was handling may still be
  /// committed by the others.
  storage_failed,
  /// Definite. The request is malformed or not supported by the state machine.
  invalid_request,
  /// Definite. The node was stopped while the request waited for something that changes
  /// nothing (a leader change, the outcome of its own join). A write or read it held gets
  /// leadership_lost instead.
  shutting_down,
  /// Indefinite. The node's disk is full and it stopped; a write it was handling may still be
  /// committed by the others. Nothing it acknowledged is lost.
  disk_full,
  /// Definite. The node the request was for is not connected (its address does not answer).
  unreachable,
  /// Indefinite. The connection to the node broke while the request was under way: it may or
  /// may not have taken effect. Reported as soon as the connection is seen to break, instead of
  /// after the request's timeout.
  connection_lost,
};

} // namespace cafraft

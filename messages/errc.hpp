// The codes of the errors callers of cafraft see, without CAF: the Raft core (runtime/core.hpp)
// names its failures with them, and messages/errors.hpp makes them CAF errors.
#pragma once

#include <cstdint>

namespace cafraft {

enum class errc : uint8_t {
  // The numbers travel on the wire (docs/protocol.md): each keeps its number for good, and a
  // retired number is never given to another error.
  /// Not an error.
  none = 0,
  /// Definite. This node is not the leader; the context names the leader (id, address).
  not_leader = 1,
  /// Definite. No leader is known right now (an election is running): retry shortly.
  unknown_leader = 2,
  /// Indefinite. The leader lost its leadership while the request was pending; a write may
  /// still have been committed by the next leader.
  leadership_lost = 3,
  // 4 and 5 are retired: append_failed and commit_failed were never raised. A leader whose
  // append fails stops with storage_failed (or disk_full), and a write whose commit is not
  // confirmed fails with leadership_lost.
  /// Definite. Another configuration change is still in progress.
  config_change_in_progress = 6,
  /// Definite. A node asked to join a cluster through itself.
  self_join = 7,
  /// Definite. The node id is a member but the node has no data directory.
  missing_data = 8,
  /// Definite. Another member already uses this id at a different address.
  duplicate_member = 9,
  /// Definite. This node was removed from the cluster.
  removed_member = 10,
  /// Indefinite. No answer in time; the request may or may not have taken effect.
  timeout = 11,
  /// Definite. Too many requests are pending; retry later.
  overloaded = 12,
  /// Indefinite. Storage failed and the node stopped; a write it was handling may still be
  /// committed by the others.
  storage_failed = 13,
  /// Definite. The request is malformed or not supported by the state machine.
  invalid_request = 14,
  /// Definite. The node was stopped while the request waited for something that changes
  /// nothing (a leader change, the outcome of its own join). A write or read it held gets
  /// leadership_lost instead.
  shutting_down = 15,
  /// Indefinite. The node's disk is full and it stopped; a write it was handling may still be
  /// committed by the others. Nothing it acknowledged is lost.
  disk_full = 16,
  /// Definite. The node the request was for is not connected (its address does not answer).
  unreachable = 17,
  /// Indefinite. The connection to the node broke while the request was under way: it may or
  /// may not have taken effect. Reported as soon as the connection is seen to break, instead of
  /// after the request's timeout.
  connection_lost = 18,
  /// Definite for the write at hand: its client session is unknown or expired, and nothing was
  /// applied. A write retried after an indefinite failure may have been applied before the
  /// session expired (docs/sessions.md); the client opens a new session.
  session_expired = 19,
  /// Definite. A watch fell behind its buffer and was ended; resume from the index given.
  watch_overflow = 20,
  /// Definite. A watch asked for changes older than the node still holds (a snapshot replaced
  /// them); resume from the index given, after reading the current state.
  compacted = 21,
  /// Definite. The process the request reached hosts no group with the id it names
  /// (docs/groups.md).
  unknown_group = 22,
};

/// True for a number that names an error of this version (retired numbers do not).
constexpr bool known_errc(uint32_t code) {
  return code <= static_cast<uint32_t>(errc::unknown_group) && code != 4 && code != 5;
}

} // namespace cafraft

// The errors callers of cafraft see: one CAF error category, "cafraft".
//
// Definite failures (nothing happened; retrying elsewhere is safe) are kept apart from
// indefinite ones (the command may or may not have been applied): see is_indefinite().
#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>

namespace cafraft {

namespace pb {
class BatchError;
} // namespace pb

/// The category atom of every cafraft error.
constexpr caf::atom_value error_category = caf::atom("cafraft");

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
  /// Definite. The node is stopping.
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

/// A one-line meaning of each code.
const char* to_string(errc x);

caf::error make_error(errc x);
caf::error make_error(errc x, std::string detail);

/// not_leader with the leader's id and address as context (strings at positions 0 and 1).
caf::error make_not_leader(const std::string& leader_id, const std::string& leader_address);

/// Renders any cafraft error as text, e.g. "not_leader: leader is n2 at 127.0.0.1:4001".
std::string render(const caf::error& e);

/// True for errors whose outcome is unknown (timeout, leadership_lost, commit_failed,
/// connection_lost, and CAF's request_timeout): a retry of a non-idempotent command may apply it
/// twice.
bool is_indefinite(const caf::error& e);

/// If `e` is not_leader, stores the leader's id and address and returns true.
bool leader_hint(const caf::error& e, std::string& id, std::string& address);

/// An error as an item of a pb::BatchResponse, and back: cafraft errors keep their code,
/// detail and leader hint; CAF's own (caf::sec) keep their code.
void to_pb(const caf::error& e, pb::BatchError& out);
caf::error from_pb(const pb::BatchError& e);

} // namespace cafraft

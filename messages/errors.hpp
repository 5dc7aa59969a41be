// The errors callers of cafraft see: one CAF error category, "cafraft".
//
// Definite failures (nothing happened; retrying elsewhere is safe) are kept apart from
// indefinite ones (the command may or may not have been applied): see is_indefinite().
#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <cafraft/messages/errc.hpp>

namespace cafraft {

namespace pb {
class BatchError;
} // namespace pb

/// The category atom of every cafraft error.
constexpr caf::atom_value error_category = caf::atom("cafraft");

/// A one-line meaning of each code.
const char* to_string(errc x);

caf::error make_error(errc x);
caf::error make_error(errc x, std::string detail);

/// not_leader with the leader's id and address as context (strings at positions 0 and 1).
caf::error make_not_leader(const std::string& leader_id, const std::string& leader_address);

/// Renders any cafraft error as text, e.g. "not_leader: leader is n2 at 127.0.0.1:4001".
std::string render(const caf::error& e);

/// True for errors whose outcome is unknown (timeout, leadership_lost, storage_failed, disk_full,
/// connection_lost, and CAF's request_timeout): a retry of a non-idempotent command may apply it
/// twice.
bool is_indefinite(const caf::error& e);

/// If `e` is not_leader, stores the leader's id and address and returns true.
bool leader_hint(const caf::error& e, std::string& id, std::string& address);

/// An error as an item of a pb::BatchResponse (or a wire frame), and back: cafraft errors keep
/// their code, detail and leader hint; CAF's own (caf::sec) keep their code. A code this
/// version does not know (a retired one, a later version's) comes back as invalid_request.
void to_pb(const caf::error& e, pb::BatchError& out);
caf::error from_pb(const pb::BatchError& e);

} // namespace cafraft

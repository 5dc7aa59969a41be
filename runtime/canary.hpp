// Canaries: known Raft bugs planted at the real decision points, which the test suite must
// catch (docs/testing.md, "Canaries"). A planted bug is a branch
//
//     if (CAFRAFT_CANARY("vote_sent_before_persisted")) { buggy } else { correct }
//
// Built with CAFRAFT_CANARIES (the CMake option of the check build; never a release build),
// CAFRAFT_CANARY("name") is true iff the environment variable CAFRAFT_CANARY equals "name"
// (read once). Built without it, the macro is the constant false and the buggy branch compiles
// away. Either way the name must be one of `names` below, or the code does not compile; and a
// CAFRAFT_CANARY naming no canary aborts the program at start, so that a typo cannot make a
// canary look caught. tests/canary/ runs each canary against the tests that must catch it.
#pragma once

#include <array>
#include <cstddef>
#include <stdexcept>
#include <string_view>

namespace cafraft::canary {

// Every canary in the code, one per planted bug. tests/canary/check_table.sh keeps this list,
// the CAFRAFT_CANARY("...") sites in actors/ and runtime/, and tests/canary/canaries.tsv equal.
// canary-names-begin
inline constexpr std::array<std::string_view, 37> names{
    // persist before you promise
    "vote_sent_before_persisted",
    "vote_forgotten_at_restart",
    "append_ack_before_persisted",
    "leader_counts_unpersisted_self",
    "storage_sends_before_write",
    // the rules of Figure 2
    "vote_ignores_last_term",
    "append_ignores_prev_term",
    "truncate_on_matching_append",
    "conflict_not_truncated",
    "commit_older_term_by_counting",
    "commit_index_decreases",
    // stale terms
    "leader_ignores_higher_term",
    "follower_accepts_stale_leader",
    // the read path
    "read_index_without_quorum",
    "read_before_own_term_commit",
    "read_before_apply",
    // membership
    "config_changes_overlap",
    "removed_leader_keeps_leading",
    // pre-vote and check-quorum
    "pre_vote_bumps_term",
    "pre_vote_ignores_leader_lease",
    "leader_ignores_check_quorum",
    // WAL recovery
    "wal_skips_payload_checksum",
    "wal_corrupt_tail_cut_as_torn",
    "wal_append_not_synced",
    // the node's actors
    "killed_node_role_runs_on",
    // the wire
    "wire_trusts_claimed_node_id",
    // snapshots
    "kv_snapshot_sees_later_writes",
    "snapshot_written_on_apply_path",
    "wire_trusts_raft_sender",
    "older_connection_kept",
    "raft_from_any_certificate",
    "feature_gate_ignores_members",
    // client sessions
    "session_duplicate_applied",
    // read policies
    "follower_read_skips_read_index",
    "lease_read_after_expiry",
    // quiescence
    "quiesced_follower_never_wakes",
    "leader_quiesces_with_lagging_follower",
};
// canary-names-end

inline constexpr size_t none = names.size();

/// The position of `name` in `names`. Evaluated at compile time by CAFRAFT_CANARY: an unknown
/// name is a compile error ("throw is not a constant expression").
constexpr size_t index_of(std::string_view name) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name)
      return i;
  throw std::invalid_argument("unknown canary");
}

/// The canary that CAFRAFT_CANARY names (read once, at the first call), or `none`. Aborts with a
/// message when it names no canary.
size_t chosen();

template <size_t I> inline bool on() {
  return chosen() == I;
}

template <size_t I> constexpr bool never() {
  return false;
}

} // namespace cafraft::canary

#ifdef CAFRAFT_CANARIES
#define CAFRAFT_CANARY(name) (::cafraft::canary::on<::cafraft::canary::index_of(name)>())
#else
#define CAFRAFT_CANARY(name) (::cafraft::canary::never<::cafraft::canary::index_of(name)>())
#endif

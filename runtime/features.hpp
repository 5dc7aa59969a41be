// Feature levels (docs/deployment.md, "Rolling upgrades"): what a cafraft binary supports of
// the features that change the wire or the log, and the gate that keeps a cluster from using
// one before every member can read it (etcd's cluster version).
//
// Each node announces the highest level its binary supports in every AppendEntriesResponse.
// The leader takes the lowest level any member announced (its own included; a member it has
// not heard from yet holds the gate shut) and, when that is above the level in force, appends
// an ENTRY_CLUSTER_LEVEL entry. Once that entry is committed the level is in force on every
// node that applies it (raft_state::cluster_level, kept in snapshots): a feature of that level
// may be used. One level entry is in flight at a time, and the level never goes down: a
// binary that supports less than the level in force is refused when it joins.
#pragma once

#include <cstdint>

namespace cafraft::features {

/// What every cafraft binary reads: the log and wire of the first release.
inline constexpr uint32_t base = 1;
/// ENTRY_CLUSTER_LEVEL entries in the log: the first gated feature (a binary of level 1 would
/// not know the entry's type).
inline constexpr uint32_t cluster_level_entries = 2;

/// Client sessions (ENTRY_SESSION entries, SnapshotMeta.sessions_size) and follower reads
/// (ReadIndexRequest between members).
inline constexpr uint32_t sessions = 3;

/// The highest level this binary supports.
inline constexpr uint32_t current = sessions;

} // namespace cafraft::features

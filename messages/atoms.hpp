// Atoms of cafraft's actor messages. Named after what they mean in Raft, never reusing CAF's
// own atoms (get_atom, put_atom, ...). The message signatures that use them are listed in
// messages/api.hpp.
#pragma once

#include <caf/atom.hpp>

namespace cafraft {

// Client API (see messages/api.hpp).
using status_atom = caf::atom_constant<caf::atom("rf_status")>;
using leader_atom = caf::atom_constant<caf::atom("rf_leader")>;
using wait_leader_atom = caf::atom_constant<caf::atom("rf_waitld")>;
using subscribe_atom = caf::atom_constant<caf::atom("rf_subscr")>;
using step_down_atom = caf::atom_constant<caf::atom("rf_stepdn")>;
using joined_atom = caf::atom_constant<caf::atom("rf_joined")>;
using directory_atom = caf::atom_constant<caf::atom("rf_dir")>;
using inspect_atom = caf::atom_constant<caf::atom("rf_inspect")>;
using enlist_atom = caf::atom_constant<caf::atom("rf_enlist")>;
using recent_log_atom = caf::atom_constant<caf::atom("rf_log")>;
using batch_atom = caf::atom_constant<caf::atom("rf_batch")>;
using connection_watch_atom = caf::atom_constant<caf::atom("rf_cwatch")>;
using connection_lost_atom = caf::atom_constant<caf::atom("rf_clost")>;
/// A connection actor to its owner: the handshake is done (actors/connection.hpp).
using wire_up_atom = caf::atom_constant<caf::atom("rf_wireup")>;

// Node internals.
/// A role's wake-up: the core's earliest deadline is due (core::tick).
using tick_atom = caf::atom_constant<caf::atom("rf_tick")>;
using flush_atom = caf::atom_constant<caf::atom("rf_flush")>;
using handover_atom = caf::atom_constant<caf::atom("rf_handov")>;
using retire_atom = caf::atom_constant<caf::atom("rf_retire")>;
using persist_atom = caf::atom_constant<caf::atom("rf_persist")>;
using load_atom = caf::atom_constant<caf::atom("rf_load")>;
using apply_atom = caf::atom_constant<caf::atom("rf_apply")>;
using query_atom = caf::atom_constant<caf::atom("rf_query")>;
using peer_handle_atom = caf::atom_constant<caf::atom("rf_peerh")>;
using send_to_peer_atom = caf::atom_constant<caf::atom("rf_tx")>;
using peer_stats_atom = caf::atom_constant<caf::atom("rf_pstats")>;
using snapshot_atom = caf::atom_constant<caf::atom("rf_snap")>;
using snapshot_read_atom = caf::atom_constant<caf::atom("rf_snread")>;
using snapshot_chunk_atom = caf::atom_constant<caf::atom("rf_snchunk")>;
using compact_atom = caf::atom_constant<caf::atom("rf_compact")>;
using restore_atom = caf::atom_constant<caf::atom("rf_restore")>;
using leadership_atom = caf::atom_constant<caf::atom("rf_ldship")>;
using removed_atom = caf::atom_constant<caf::atom("rf_removed")>;
using new_peer_atom = caf::atom_constant<caf::atom("rf_newpeer")>;
using config_change_atom = caf::atom_constant<caf::atom("rf_cfgchg")>;
using admitted_atom = caf::atom_constant<caf::atom("rf_admit")>;
using retry_atom = caf::atom_constant<caf::atom("rf_retry")>;
/// A watch of the KV store (docs/watches.md): (watch_atom, pb::WatchRequest, caf::actor
/// watcher) -> pb::WatchStarted.
using watch_atom = caf::atom_constant<caf::atom("rf_watch")>;
/// A leadership hook (node_config::on_become_leader, before_transfer) called `done`, or its
/// time ran out: (hook_done_atom, hook id, bool timed_out).
using hook_done_atom = caf::atom_constant<caf::atom("rf_hookok")>;
/// The groups of a process (docs/groups.md): groups_atom -> pb::GroupList.
using groups_atom = caf::atom_constant<caf::atom("rf_groups")>;
/// From a group's peer to the connection it shares with the other groups of its process:
/// (lane_atom, uint64_t group), the group its Raft messages are for.
using lane_atom = caf::atom_constant<caf::atom("rf_lane")>;

} // namespace cafraft

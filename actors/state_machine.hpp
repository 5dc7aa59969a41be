// The state machine actor: applies committed entries in log order, exactly once, answers
// queries once it has applied far enough, and writes snapshots.
//
//   receives  apply_atom, std::vector<pb::LogEntry> -> std::vector<std::string> (one result per
//             entry; entries at or below the applied index are skipped and get "")
//             query_atom, uint64_t min_index, std::string query, bool kv -> pb::GetResponse
//             (kv: the KV store's query) or pb::QueryResponse (a user's own), answered once
//             the applied index reaches min_index. The roles delegate reads here: the answer
//             reaches the client even when the role that asked has handed over meanwhile.
//             restore_atom, pb::SnapshotMeta: a role installed a snapshot from the leader;
//             the state is replaced by it (read from storage) before anything else is applied
//             snapshot_atom -> pb::SnapshotMeta: a snapshot now (a backup), prepared after
//             the request; answered once it is durable
//   snapshots once snapshot_entries or snapshot_bytes were applied since the last one: it
//             asks the state machine to prepare_snapshot() between two applies, and a snapshot
//             writer actor (linked; detached with detached_storage) streams it to storage in
//             chunks of snapshot_chunk_bytes while applies go on; once it is durable
//             (snapshot_atom, pb::SnapshotMeta from the writer) it sends compact_atom,
//             pb::SnapshotMeta to the node (the role drops the entries the snapshot covers)
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <caf/actor.hpp>
#include <caf/local_actor.hpp>

#include <cafraft/runtime/config.hpp>
#include <cafraft/runtime/observer.hpp>
#include <cafraft/runtime/state_machine.hpp>
#include <cafraft/runtime/storage.hpp>

namespace cafraft {

/// Spawns the state machine actor linked to `node`. `start` is the snapshot the node recovered
/// (none: an empty state), with its data: the state machine is restored from it first.
caf::actor spawn_state_machine(caf::local_actor* node, std::shared_ptr<const node_config> cfg,
                               caf::actor storage, std::unique_ptr<state_machine> sm,
                               std::optional<pb::SnapshotMeta> start,
                               std::shared_ptr<snapshot_source> start_data);

} // namespace cafraft

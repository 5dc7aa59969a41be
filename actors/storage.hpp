// The storage actor: the only caller of a node's log_storage.
//
//   receives  persist_atom, persist_batch, after_write -> () once the batch is durable, and
//             the after_write's messages sent before that (a request is answered; a batch sent
//             without one is just written). Batches are written in arrival order, and what
//             waits for them sent in that order. A batch that finds nothing else waiting is
//             written at once; every batch that arrived while a write was under way shares the
//             next write: one group commit, one fdatasync.
//             a snapshot the state machine writes, in chunks (log_storage::save_begin...):
//               snapshot_atom, pb::SnapshotMeta -> true    begins it
//               snapshot_atom, std::string chunk -> true   appends a chunk
//               snapshot_atom -> pb::SnapshotMeta          once it is durable (and the log it
//                                                          covers dropped), with size and crc
//             restore_atom -> (pb::SnapshotMeta, std::shared_ptr<snapshot_source>) the current
//             snapshot, to restore from
//             snapshot_read_atom, uint64_t offset, uint64_t max -> (pb::SnapshotMeta,
//             std::string chunk) of the current snapshot
//             snapshot_chunk_atom, pb::InstallSnapshot -> (uint64_t next offset, bool complete)
//             for a snapshot the leader sends; install it with a persist_batch once complete
//             The snapshot requests first write every batch asked for before them.
//   fails     a write error answers every waiting batch with storage_failed (disk_full when
//             the disk is full) and ends the actor with it; the node is linked and stops too.
//             A failed fsync is never retried.
#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/local_actor.hpp>

#include <cafraft/actors/context.hpp>
#include <cafraft/runtime/storage.hpp>

namespace cafraft {

/// Spawns the storage actor linked to `node`, on its own thread when `detached`. It adds every
/// batch it made durable to `counts->completed` once it sent what waited for the batch.
caf::actor spawn_storage(caf::local_actor* node, std::shared_ptr<log_storage> store, bool detached,
                         std::shared_ptr<persist_counts> counts);

} // namespace cafraft

// The storage actor: the only caller of a node's log_storage.
//
//   receives  persist_atom, persist_batch -> () once the batch is durable. Batches are written in
//   arrival order. Every batch that arrived while a
//             write was under way shares the next write: one group commit, one fdatasync.
//   fails     a write error answers every waiting batch with storage_failed (disk_full when
//             the disk is full) and ends the actor with it; the node is linked and stops too.
//             A failed fsync is never retried.
#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/local_actor.hpp>

#include "runtime/storage.hpp"

namespace cafraft {

/// Spawns the storage actor linked to `node`, on its own thread when `detached`.
caf::actor spawn_storage(caf::local_actor* node, std::shared_ptr<log_storage> store, bool detached);

} // namespace cafraft

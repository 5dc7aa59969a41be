// The storage actor: the only caller of a node's log_storage.
//
//   receives  load_atom -> raft state recovered from storage (once, at start)
//             persist_atom, persist_batch -> uint64_t (last index written), after the batch is
//             durable. Batches are written in arrival order.
//   fails     a write error ends the actor with storage_failed; the node is linked and stops
//             with it (an fsync that failed is never retried).
#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/local_actor.hpp>

#include "runtime/storage.hpp"

namespace cafraft {

/// Spawns the storage actor linked to `node`, on its own thread when `detached`.
caf::actor spawn_storage(caf::local_actor* node, std::shared_ptr<log_storage> store, bool detached);

} // namespace cafraft

// Messages that never leave a process: they carry C++ objects between the actors of one node.
// They are declared here, like every other message, and are not serializable on purpose.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/message.hpp>

#include <caf/allowed_unsafe_message_type.hpp>

#include <cafraft/runtime/raft_state.hpp>
#include <cafraft/runtime/state_machine.hpp>
#include <cafraft/runtime/storage.hpp>

namespace cafraft {

/// A role actor's last word: it gives up the Raft state, and the node starts role `next` with
/// it. The sender never touches the state again (thesis: one owner of the Raft state).
struct role_handover {
  role_kind next;
  std::shared_ptr<raft_state> state;
};

/// What a role sends once a write is durable (persist before you promise, thesis §3.8): the
/// storage actor sends it right after the write, in order, so that it needs no round trip
/// through the role (actors/storage.hpp).
struct after_write {
  std::vector<std::pair<caf::actor, caf::message>> sends;
};

} // namespace cafraft

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cafraft::role_handover)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cafraft::persist_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(cafraft::after_write)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<cafraft::snapshot_source>)

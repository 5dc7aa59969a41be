// The state machine actor: applies committed entries in log order, exactly once, and answers
// queries once it has applied far enough.
//
//   receives  apply_atom, std::vector<pb::LogEntry> -> std::vector<std::string> (one result per
//             entry; entries at or below the applied index are skipped and get "")
//             query_atom, uint64_t min_index, std::string query -> (std::string, uint64_t
//             applied index), answered once the applied index reaches min_index
#pragma once

#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/local_actor.hpp>

#include "runtime/observer.hpp"
#include "runtime/state_machine.hpp"

namespace cafraft {

caf::actor spawn_state_machine(caf::local_actor* node, std::string node_id,
                               std::unique_ptr<state_machine> sm,
                               std::shared_ptr<step_observer> observer);

} // namespace cafraft

// Inspection (docs/inspection.md). Every actor of a node answers inspect_atom with a
// pb::Inspection of its own state; the node keeps the directory of its actors and routes a
// pb::InspectRequest to the actor it names. Counting is one increment per handled message;
// everything else is computed when someone asks.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <caf/scheduled_actor.hpp>

#include "messages/raft.pb.h"

namespace cafraft {

/// An Inspection of `self` with its mailbox size (read by the actor itself) and counter.
inline pb::Inspection make_inspection(caf::scheduled_actor* self, const std::string& kind,
                                      uint64_t handled,
                                      std::vector<std::pair<std::string, std::string>> fields) {
  pb::Inspection out;
  out.set_kind(kind);
  out.set_mailbox(self->mailbox().size());
  out.set_handled(handled);
  for (auto& [k, v] : fields)
    (*out.mutable_fields())[k] = v;
  return out;
}

} // namespace cafraft

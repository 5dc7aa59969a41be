// What every role actor of a node is given by the node: the handles it sends to and the
// node's configuration. Handles and shared constants only; no mutable state is shared.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <spdlog/logger.h>

#include "runtime/config.hpp"

namespace cafraft {

struct node_context {
  caf::actor node;                         // the node actor: stable address, receives handovers
  caf::actor storage;                      // persist_batch -> uint64_t (last index written)
  caf::actor state_machine;                // apply and query
  std::map<std::string, caf::actor> peers; // member id -> peer actor
  std::shared_ptr<const node_config> cfg;
  std::shared_ptr<spdlog::logger> log;
};

} // namespace cafraft

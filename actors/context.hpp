// What every role actor of a node is given by the node: the handles it sends to and the
// node's configuration. Handles and shared constants, and the two counters of persist_counts.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <spdlog/logger.h>

#include <cafraft/actors/pass_on.hpp>
#include <cafraft/runtime/config.hpp>

namespace cafraft {

/// Persist requests the node's roles sent to storage, and those storage completed. When the
/// two are equal nothing waits at storage, and an answer that needs no write of its own (a
/// follower's answer to a heartbeat) may go out at once instead of through storage: it cannot
/// overtake a write it depends on. Only the current role sends, one at a time.
struct persist_counts {
  std::atomic<uint64_t> requested{0};
  std::atomic<uint64_t> completed{0}; // written by the storage actor
};

/// The ids a node knows as members, past or present: itself and every member of each
/// configuration it saw since it started. Its connections take Raft messages only from these
/// (wire::session::set_member_check); read by them, written by the node.
class known_members {
public:
  void add(const std::string& id) {
    std::lock_guard<std::mutex> guard{mtx_};
    ids_.insert(id);
  }
  bool contains(const std::string& id) const {
    std::lock_guard<std::mutex> guard{mtx_};
    return ids_.count(id) > 0;
  }

private:
  mutable std::mutex mtx_;
  std::set<std::string> ids_;
};

/// The members that `node` (a node actor of this process) knows; null for any other actor.
std::shared_ptr<known_members> known_members_of(const caf::actor& node);

/// A node registers what it knows when it starts (null: it ended). Defined with the
/// connections, which read it (actors/connection.cpp).
void register_known_members(const caf::actor_addr& node, std::shared_ptr<known_members> known);

struct node_context {
  caf::actor node;                           // the node actor: stable address, receives handovers
  std::shared_ptr<pass_on> route;            // the node passes messages to the role through it
  caf::actor storage;                        // persist_batch -> () once durable
  std::shared_ptr<persist_counts> persisted; // shared with storage
  caf::actor state_machine;                  // apply and query
  std::map<std::string, caf::actor> peers;   // member id -> peer actor
  std::shared_ptr<known_members> known = std::make_shared<known_members>(); // peers' ids and ours
  std::shared_ptr<const node_config> cfg;
  std::shared_ptr<spdlog::logger> log;
};

} // namespace cafraft

// A hook that sees every step of every role actor and every applied entry. Tests use it to
// check Raft's invariants after each step; production leaves it unset.
#pragma once

#include <cstdint>
#include <string>

#include <cafraft/runtime/raft_state.hpp>

namespace cafraft {

class step_observer {
public:
  virtual ~step_observer() = default;
  /// After a role actor handled a message. `s` is the state it owns.
  virtual void on_step(role_kind role, const raft_state& s) = 0;
  /// After the state machine of `node_id` applied `entry`.
  virtual void on_apply(const std::string& node_id, const pb::LogEntry& entry) = 0;
  /// After the state machine of `node_id` was restored from a snapshot through `index`.
  virtual void on_restore(const std::string& node_id, uint64_t index) = 0;
};

} // namespace cafraft

// A replicated lock service: the second built-in example of a state machine (the first is the
// KV store). Locks have owners and fencing tokens: a grant's token is the log index it was
// applied at, so tokens only grow, and a resource guarded by a lock can refuse a writer whose
// token is older than one it has seen (a stale owner after a pause).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include <cafraft/runtime/state_machine.hpp>

namespace lockservice {

class lock_table : public cafraft::state_machine {
public:
  struct held {
    std::string owner;
    uint64_t token = 0;
  };

  /// `restored` (optional) is set to the applied index of each snapshot restored.
  explicit lock_table(std::shared_ptr<std::atomic<uint64_t>> restored = nullptr);

  std::string apply(uint64_t index, const std::string& command) override;
  std::string query(const std::string& query) const override;
  std::unique_ptr<cafraft::snapshot_writer> prepare_snapshot() override;
  bool restore(cafraft::snapshot_source& in) override;

private:
  std::map<std::string, held> locks_;
  uint64_t applied_ = 0;
  std::shared_ptr<std::atomic<uint64_t>> restored_;
};

} // namespace lockservice

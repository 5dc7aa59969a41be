// What a replicated state machine must provide, and the built-in key-value store.
// The state machine actor is the only caller; calls never overlap.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace cafraft {

class state_machine {
public:
  virtual ~state_machine();
  /// Applies the committed command at `index`. Must be deterministic: every node applies the
  /// same commands in the same order and must reach the same state. Returns the result that
  /// the proposer receives. Must not throw for a malformed command: return an error result.
  virtual std::string apply(uint64_t index, const std::string& command) = 0;
  /// Answers a read-only query against the current state.
  virtual std::string query(const std::string& query) const = 0;
  /// Serializes the whole state.
  virtual std::string snapshot() const = 0;
  /// Replaces the whole state with a snapshot. Returns false if it is malformed.
  virtual bool restore(const std::string& snapshot) = 0;
};

/// The built-in replicated key-value store. Commands are encoded pb::KvCommand, queries
/// pb::KvQuery, query answers pb::GetResponse, apply results pb::KvResult.
class kv_store : public state_machine {
public:
  std::string apply(uint64_t index, const std::string& command) override;
  std::string query(const std::string& query) const override;
  std::string snapshot() const override;
  bool restore(const std::string& snapshot) override;

  const std::map<std::string, std::string>& data() const { return data_; }

private:
  std::map<std::string, std::string> data_;
};

} // namespace cafraft

// Where a node keeps what must survive a crash: the hard state and the log. The storage actor
// is the only caller; every call happens on its thread, in the order the role actors asked.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "messages/raft.pb.h"

namespace cafraft {

/// One write that the storage actor makes durable as a unit, in this order: hard state, cut
/// the log from `truncate_from` on (0: no cut), append `entries`.
struct persist_batch {
  std::optional<pb::HardState> hard_state;
  uint64_t truncate_from = 0;
  std::vector<pb::LogEntry> entries;

  bool empty() const { return !hard_state && truncate_from == 0 && entries.empty(); }
};

/// What a node finds when it starts.
struct recovered_state {
  pb::HardState hard_state;
  std::vector<pb::LogEntry> log; // log[i].index() == i + 1
};

class log_storage {
public:
  virtual ~log_storage();
  /// Reads everything back. Called once, before any write.
  virtual recovered_state load() = 0;
  /// Writes batches, in order; all are durable when the call returns (one group commit).
  /// Throws std::runtime_error when it cannot: the node must stop, because it may have
  /// promised something it cannot keep.
  virtual void write(std::vector<persist_batch> batches) = 0;
};

/// Keeps everything in memory. Survives a node's restart within one process (tests spawn a
/// node again on the same object), not the process.
class memory_storage : public log_storage {
public:
  recovered_state load() override;
  void write(std::vector<persist_batch> batches) override;

  /// Counts write() calls, for tests and benchmarks.
  uint64_t writes() const;

private:
  void apply(persist_batch& batch);

  mutable std::mutex mtx_;
  recovered_state data_;
  uint64_t writes_ = 0;
};

} // namespace cafraft

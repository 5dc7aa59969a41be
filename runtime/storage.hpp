// Where a node keeps what must survive a crash: the hard state and the log. The storage actor
// is the only caller; every call happens on its thread, in the order the role actors asked.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <cafraft/messages/raft.pb.h>

namespace cafraft {

/// One write that the storage actor makes durable as a unit, in this order: hard state,
/// install the received snapshot, cut the log from `truncate_from` on (0: no cut), append
/// `entries`.
struct persist_batch {
  std::optional<pb::HardState> hard_state;
  /// The snapshot that receive_chunk() reported complete becomes the node's snapshot; with
  /// `reset_log` the whole log goes too (rules::install_snapshot decides).
  std::optional<pb::SnapshotMeta> snapshot;
  bool reset_log = false;
  uint64_t truncate_from = 0;
  std::vector<pb::LogEntry> entries;

  bool empty() const { return !hard_state && !snapshot && truncate_from == 0 && entries.empty(); }
};

/// What a node finds when it starts.
struct recovered_state {
  pb::HardState hard_state;
  std::optional<pb::SnapshotMeta> snapshot;
  std::string snapshot_data;     // for the state machine's restore()
  std::vector<pb::LogEntry> log; // the entries after the snapshot, in order
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

  /// Saves a snapshot the state machine made through meta.index (durable when it returns),
  /// then drops what it can of the log it covers. Throws like write().
  virtual void save_snapshot(const pb::SnapshotMeta& meta, std::string_view data) = 0;
  /// Up to `max` bytes of the current snapshot's data from `offset`, and its meta. Returns
  /// false when there is no snapshot.
  virtual bool read_snapshot(uint64_t offset, size_t max, pb::SnapshotMeta& meta,
                             std::string& data) = 0;

  /// Takes a chunk of a snapshot that the leader sends. Returns the offset the next chunk must
  /// start at (all data before it is held); sets `complete` when the whole snapshot is here,
  /// matches its checksum, and is durable, ready to be installed by a persist_batch. A chunk
  /// of another snapshot at offset 0 starts over with that one. Memory stays bounded: chunks go
  /// to a file as they come.
  uint64_t receive_chunk(const pb::InstallSnapshot& chunk, bool& complete);

  /// What the storage actor adds to its inspection (docs/inspection.md): name and value.
  virtual std::vector<std::pair<std::string, std::string>> describe() const { return {}; }

protected:
  /// The snapshot being received: start over (drop what was received), append, make durable.
  virtual void incoming_begin(const pb::SnapshotMeta& meta) = 0;
  virtual void incoming_append(std::string_view data) = 0;
  virtual void incoming_finish() = 0;
  /// The meta of the snapshot received whole, if any (install takes it).
  const std::optional<pb::SnapshotMeta>& incoming_complete() const { return received_; }
  void incoming_clear();

private:
  std::optional<pb::SnapshotMeta> incoming_;
  uint64_t incoming_bytes_ = 0;
  uint32_t incoming_crc_ = 0;
  std::optional<pb::SnapshotMeta> received_;
};

/// Keeps everything in memory. Survives a node's restart within one process (tests spawn a
/// node again on the same object), not the process.
class memory_storage : public log_storage {
public:
  recovered_state load() override;
  void write(std::vector<persist_batch> batches) override;
  void save_snapshot(const pb::SnapshotMeta& meta, std::string_view data) override;
  bool read_snapshot(uint64_t offset, size_t max, pb::SnapshotMeta& meta,
                     std::string& data) override;

  /// Counts write() calls, for tests and benchmarks.
  uint64_t writes() const;

protected:
  void incoming_begin(const pb::SnapshotMeta& meta) override;
  void incoming_append(std::string_view data) override;
  void incoming_finish() override {}

private:
  void apply(persist_batch& batch);
  void drop_covered_entries();

  mutable std::mutex mtx_;
  recovered_state data_;
  std::string incoming_;
  uint64_t writes_ = 0;
};

} // namespace cafraft

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
#include <cafraft/runtime/state_machine.hpp>

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
  std::optional<pb::SnapshotMeta> snapshot; // its data: log_storage::open_snapshot()
  std::vector<pb::LogEntry> log;            // the entries after the snapshot, in order
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

  /// Saves a snapshot the state machine writes through meta.index, a chunk at a time:
  /// save_begin() (meta's size and checksum are ignored), save_append() for each chunk, then
  /// save_finish() makes it durable and the node's snapshot (unless the node has a snapshot as
  /// new: then it is dropped), drops what it can of the log it covers, and returns its meta
  /// with size and checksum. A save_begin() abandons a save under way. Each call throws like
  /// write(); save_append() and save_finish() also when no save is under way.
  void save_begin(const pb::SnapshotMeta& meta);
  void save_append(std::string_view data);
  pb::SnapshotMeta save_finish();
  /// The same in one call, for data that is in memory.
  void save_snapshot(const pb::SnapshotMeta& meta, std::string_view data);
  /// Up to `max` bytes of the current snapshot's data from `offset`, and its meta. Returns
  /// false when there is no snapshot.
  virtual bool read_snapshot(uint64_t offset, size_t max, pb::SnapshotMeta& meta,
                             std::string& data) = 0;
  /// The current snapshot's data for a restore (nullptr when there is none). The source may be
  /// read from any thread, while storage goes on: it reads the snapshot as it was opened.
  virtual std::unique_ptr<snapshot_source> open_snapshot() = 0;

  /// Takes a chunk of a snapshot that the leader sends. Returns the offset the next chunk must
  /// start at (all data before it is held); sets `complete` when the whole snapshot is here,
  /// matches its checksum, and is durable, ready to be installed by a persist_batch. A chunk
  /// of another snapshot at offset 0 starts over with that one. Memory stays bounded: chunks go
  /// to a file as they come.
  uint64_t receive_chunk(const pb::InstallSnapshot& chunk, bool& complete);

  /// What the storage actor adds to its inspection (docs/inspection.md): name and value.
  virtual std::vector<std::pair<std::string, std::string>> describe() const { return {}; }

protected:
  /// The snapshot being saved: start it (dropping one under way), append, and make it the
  /// node's snapshot (`meta` has its size and checksum).
  virtual void saving_begin(const pb::SnapshotMeta& meta) = 0;
  virtual void saving_append(std::string_view data) = 0;
  virtual void saving_finish(const pb::SnapshotMeta& meta) = 0;
  /// The snapshot being received: start over (drop what was received), append, make durable.
  virtual void incoming_begin(const pb::SnapshotMeta& meta) = 0;
  virtual void incoming_append(std::string_view data) = 0;
  virtual void incoming_finish() = 0;
  /// The meta of the snapshot received whole, if any (install takes it).
  const std::optional<pb::SnapshotMeta>& incoming_complete() const { return received_; }
  void incoming_clear();

private:
  std::optional<pb::SnapshotMeta> saving_; // the save under way
  uint32_t saving_crc_ = 0;
  uint64_t saving_bytes_ = 0;
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
  bool read_snapshot(uint64_t offset, size_t max, pb::SnapshotMeta& meta,
                     std::string& data) override;
  std::unique_ptr<snapshot_source> open_snapshot() override;

  /// Counts write() calls, for tests and benchmarks.
  uint64_t writes() const;

protected:
  void saving_begin(const pb::SnapshotMeta& meta) override;
  void saving_append(std::string_view data) override;
  void saving_finish(const pb::SnapshotMeta& meta) override;
  void incoming_begin(const pb::SnapshotMeta& meta) override;
  void incoming_append(std::string_view data) override;
  void incoming_finish() override {}

private:
  void apply(persist_batch& batch);
  void drop_covered_entries();

  mutable std::mutex mtx_;
  recovered_state data_;
  std::shared_ptr<const std::string> snapshot_data_;
  std::string saving_;
  std::string incoming_;
  uint64_t writes_ = 0;
};

/// The whole data of the current snapshot (empty when there is none): for tests and tools.
std::string read_snapshot_data(log_storage& store);

} // namespace cafraft

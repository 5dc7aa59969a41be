// The default storage of a node: a data directory with a manifest, the hard state, WAL
// segments, the newest snapshot and a lock (docs/storage.md). Every write() is one group commit:
// the hard state, if it changed, with one fdatasync, then the log records of all batches with one
// more.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include <cafraft/runtime/disk.hpp>
#include <cafraft/runtime/storage.hpp>

namespace cafraft {

struct durable_options {
  /// The data directory; created when missing.
  std::string dir;
  /// This node's id and its cluster's id, recorded in the manifest of a new directory and
  /// checked against it when an existing one is opened (an empty cluster id is not checked).
  std::string node_id;
  std::string cluster_id;
  /// A segment that has grown past this size is closed and a new one begun.
  uint64_t segment_bytes = 64ull << 20;
  /// WAL space is reserved (fallocate) this many bytes ahead of the writes, up to the segment
  /// size, so that an fdatasync after a write need not record a new file size: on ext4 that
  /// spares a journal commit on most writes (docs/performance.md). 0: the segments grow as
  /// they are written.
  uint64_t preallocate_bytes = 4ull << 20;
  /// A restart reads WAL segments this many bytes at a time (or a record at a time when one is
  /// larger), and keeps only the entries after the snapshot.
  size_t read_chunk_bytes = 1u << 20;
  /// Damage in the log that was synced stops load() with an error naming the file and offset,
  /// unless this is set: then the damaged log is set aside (renamed, never deleted) and the
  /// node starts with an empty log, and must not vote until it has caught up with a leader.
  bool discard_corrupt_log = false;
  /// The file system; the real one when empty.
  std::shared_ptr<disk> fs;
  /// Where warnings go ("cafraft" when empty).
  std::string logger_name;
};

/// Thrown by load() when the directory cannot be used as it is (in use, another node's, damaged).
class storage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Thrown by write() when the disk is full. Nothing of the failed write was acknowledged.
class storage_full : public storage_error {
public:
  using storage_error::storage_error;
};

/// The newest format of the data directory's files (MANIFEST, HARDSTATE, WAL segments,
/// snapshots) that this binary reads, and the one it writes. A file of a newer format is
/// refused with "written by cafraft format N, this binary reads up to M", never as damaged.
constexpr uint32_t storage_format = 1;

class durable_storage : public log_storage {
public:
  explicit durable_storage(durable_options opts);
  ~durable_storage() override;

  recovered_state load() override;
  void write(std::vector<persist_batch> batches) override;
  bool read_snapshot(uint64_t offset, size_t max, pb::SnapshotMeta& meta,
                     std::string& data) override;
  std::unique_ptr<snapshot_source> open_snapshot() override;

  /// fdatasync calls made by write(), for tests and benchmarks.
  uint64_t syncs() const { return syncs_; }

  /// Segments (count, the one written and its size), fsyncs, and the snapshot's index.
  std::vector<std::pair<std::string, std::string>> describe() const override;

protected:
  void saving_begin(const pb::SnapshotMeta& meta) override;
  void saving_append(std::string_view data) override;
  void saving_finish(const pb::SnapshotMeta& meta) override;
  void incoming_begin(const pb::SnapshotMeta& meta) override;
  void incoming_append(std::string_view data) override;
  void incoming_finish() override;

private:
  std::string path(const std::string& name) const;
  void create();
  void load_hard_state(recovered_state& out);
  std::string load_snapshot(recovered_state& out);
  std::string load_log(recovered_state& out);
  void discard(recovered_state& out, const std::string& problem);
  void compact_segments();
  void remove_snapshots_before(uint64_t index);
  /// Begins segment `seq` whose first entry will be `first_index`. `restart`: the log begins
  /// anew after the snapshot, and every earlier segment is removed.
  void start_segment(uint64_t seq, uint64_t first_index, bool restart = false);
  void write_hard_state(const pb::HardState& hs);
  void append_records(const std::string& frames, uint64_t last);
  /// Reserves space in the segment being written for a write that ends at `end`.
  void reserve(const std::string& name, uint64_t end);
  /// Makes the snapshot file `tmp` the node's snapshot: renamed into place, older snapshots
  /// and the segments it covers removed.
  void install(const std::string& tmp, const pb::SnapshotMeta& meta, bool reset_log);
  /// Turns an exception of the disk into the storage's own, and fails for good.
  [[noreturn]] void fail(const disk_error& e);

  durable_options opts_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<dir_lock> lock_;
  bool failed_ = false;
  bool resyncing_ = false; // as last written
  uint64_t syncs_ = 0;
  uint64_t hs_sequence_ = 0;
  uint64_t segment_ = 0;      // sequence number of the segment being written
  uint64_t segment_size_ = 0; // the bytes of its records (the end of the data)
  uint64_t reserved_ = 0;     // its size on disk, reserved space included
  uint64_t last_index_ = 0;   // of the log as written
  // Sequence number and first index of every segment, oldest first (compaction removes them
  // from the front).
  std::vector<std::pair<uint64_t, uint64_t>> segments_;
  std::optional<pb::SnapshotMeta> snapshot_; // the current snapshot
  uint64_t snapshot_header_ = 0;             // bytes before its data in its file
  uint64_t incoming_header_ = 0;             // the same for the snapshot being received
  std::string saving_name_;                  // the snapshot being saved: its file,
  uint64_t saving_header_ = 0;               // and the bytes before its data
};

} // namespace cafraft

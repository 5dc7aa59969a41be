// The backup file of a cluster's state (messages/storage.proto, BackupHeader): written by
// cafraftctl snapshot save from a node's snapshot, checked by cafraftctl snapshot status, and
// turned into a new node's data directory by cafraft-node --restore (docs/deployment.md).
// Every function reads and writes a chunk at a time: a backup is never held whole in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <cafraft/messages/storage.pb.h>
#include <cafraft/runtime/config.hpp>
#include <cafraft/runtime/durable_storage.hpp>

namespace cafraft::backup {

/// The newest backup format this binary reads and writes.
constexpr uint32_t format = 1;

/// Writes a backup file: begin() writes the header, append() the data as it comes, finish()
/// checks that the data has the size and checksum of the header, syncs the file and renames it
/// into place (a backup is whole or absent). Each throws std::runtime_error with the reason.
class writer {
public:
  writer(std::string path, const pb::BackupHeader& header);
  ~writer();
  void append(std::string_view data);
  void finish();

private:
  std::string path_, tmp_;
  int fd_ = -1;
  pb::BackupHeader header_;
  uint64_t written_ = 0;
  uint32_t crc_ = 0;
};

/// A backup file, checked whole when it is opened (header, size, checksum).
class reader {
public:
  /// Opens and checks `path`. Throws std::runtime_error naming the file and what is wrong
  /// (missing, another format, a newer format, cut short, damaged).
  explicit reader(std::string path);
  ~reader();
  const pb::BackupHeader& header() const { return header_; }
  /// Calls `f` with the data a chunk at a time, in order.
  void read_data(const std::function<void(std::string_view)>& f, size_t chunk = 1 << 20) const;

private:
  std::string path_;
  int fd_ = -1;
  uint64_t data_offset_ = 0;
  pb::BackupHeader header_;
};

/// Seeds the empty data directory `opts.dir` from backup `file` (cafraft-node --restore): the
/// node `self` becomes the only member of a new cluster whose state is the backup's, with
/// cluster id opts.cluster_id (a new random one when empty). Checks the whole file first;
/// refuses a data directory that exists and is not empty. Throws std::runtime_error with the
/// reason, leaving nothing behind. Returns the snapshot as installed.
pb::SnapshotMeta restore(const std::string& file, durable_options opts, const member& self);

/// A new random cluster id.
std::string new_cluster_id();

/// One line per field of the header, for cafraftctl snapshot status.
std::string describe(const pb::BackupHeader& h);

} // namespace cafraft::backup

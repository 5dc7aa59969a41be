// An in-memory disk for tests that can lose power: it remembers which operations are durable,
// and builds the disk as it could look after a crash ("a file holds everything that was
// fsynced, plus any prefix of what was written after, with a torn last write"). It also
// injects faults (failing fsync, full disk, power loss at the n-th operation) and counts the
// work done, all deterministically.
//
// Model. Files are inodes bound to names, as on a real file system: append, write_at and
// truncate change an inode and become durable with sync() of a name bound to it (also when
// the writes were made under an earlier name); creating, renaming and removing a name change
// its directory (the part of the path before the last '/') and become durable with sync_dir()
// of that directory (of the target's directory for a rename). A first append/write_at to a
// missing file issues two operations: the creation, then the write. Directories themselves
// (make_dirs) are durable at once.
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <cafraft/runtime/disk.hpp>

namespace cafraft::test {

class crash_disk : public disk {
public:
  /// Thrown by the operation chosen with crash_at_op(), before it takes effect.
  class crashed_now : public std::runtime_error {
  public:
    crashed_now() : std::runtime_error("crash_disk: simulated power loss") {}
  };

  crash_disk();

  void make_dirs(const std::string& path) override;
  bool exists(const std::string& path) override;
  std::vector<std::string> list(const std::string& dir) override;
  std::string read(const std::string& path) override;
  std::string read_at(const std::string& path, uint64_t offset, size_t len) override;
  /// Reads the file's content as it is now (a copy), whatever happens to the file later.
  std::unique_ptr<file_reader> open_reader(const std::string& path) override;
  void append(const std::string& path, std::string_view data) override;
  void write_at(const std::string& path, uint64_t offset, std::string_view data) override;
  void sync(const std::string& path) override;
  void truncate(const std::string& path, uint64_t size) override;
  /// Grows the file with zeros to `size` (a data operation, durable with sync() like a write);
  /// false, changing nothing, when that exceeds the capacity.
  bool preallocate(const std::string& path, uint64_t size) override;
  void rename(const std::string& from, const std::string& to) override;
  void remove(const std::string& path) override;
  void sync_dir(const std::string& dir) override;
  /// Exclusive within this object until the returned lock is destroyed; creates no file.
  std::unique_ptr<dir_lock> lock(const std::string& path) override;

  /// Number of operations issued but not durable yet.
  size_t pending() const;
  /// Bytes the `i`-th pending operation writes (0 unless it is an append or a write_at), so
  /// that callers can enumerate the tears of every crash state.
  size_t pending_bytes(size_t i) const;
  /// A new disk holding the state after a crash: everything durable, then the first `keep`
  /// pending operations in the order they were issued, the last of them cut to its first
  /// `torn_bytes` bytes when it writes data (npos: whole). The new disk has nothing pending,
  /// no faults armed, no locks held and zeroed counters. Throws std::out_of_range when `keep`
  /// exceeds pending().
  std::shared_ptr<crash_disk> crashed(size_t keep, size_t torn_bytes = std::string::npos) const;
  /// A copy that has not crashed: the same content and the same pending operations, so that a
  /// crash of the copy can still lose what the original has not synced. Faults, locks and
  /// counters start afresh.
  std::shared_ptr<crash_disk> clone() const;
  /// A crash state drawn from `rng` (any uniform random bit generator): keep uniform in
  /// [0, pending()], and a tear of the last kept operation uniform in [0, its bytes].
  template <class Rng> std::shared_ptr<crash_disk> crash(Rng& rng) const {
    return crash_with(
        [&rng](uint64_t bound) { return static_cast<uint64_t>(rng() - Rng::min()) % (bound + 1); });
  }

  /// Lets `n_syncs` more sync() calls succeed; every later one throws
  /// disk_error("fdatasync", path, err) and makes nothing durable. sync_dir() is not affected.
  void fail_sync_after(size_t n_syncs, int err = EIO);
  /// Limits the total size of the files. An append or write_at that would exceed it throws
  /// disk_error("write", path, ENOSPC) and changes nothing (a missing file is not created).
  /// Truncating to a larger size is not limited (sparse, as on a real file system); space
  /// reserved with preallocate() counts.
  void set_capacity(uint64_t bytes);
  /// Lets `n` more mutating operations (append, write_at, truncate, preallocate, sync,
  /// sync_dir, rename, remove) through; the next one throws crashed_now before taking effect, and
  /// so does every later one until crash_at_op() is called again (the power stays off; reads still
  /// work). npos disarms.
  void crash_at_op(size_t n);

  /// True once the operation chosen with crash_at_op() was refused: the power is off, and
  /// that operation (and every later one) never took place.
  bool power_failed() const;

  /// Successful sync() calls (sync_dir() not included).
  uint64_t syncs() const;
  /// Bytes written by successful appends and write_ats.
  uint64_t bytes_written() const;
  /// The most bytes one read() or read_at() returned.
  uint64_t largest_read() const;
  /// Mutating operations attempted so far, including failed ones but not those that threw
  /// crashed_now.
  uint64_t ops() const;

  /// For corruption tests: sets the current and the durable content of a file (creating it,
  /// durably), without counting an operation.
  void poke(const std::string& path, std::string content);

private:
  enum class kind { create, append, write_at, truncate, preallocate, rename, remove, set };

  struct op {
    kind what;
    std::string path; // the name created, renamed, removed or set, or the file written
    std::string to;   // rename target
    uint64_t inode = 0;
    uint64_t offset = 0; // write_at offset, truncate or preallocate size
    std::string data;
    bool durable = false;
  };

  // Names bound to inodes, and the content of the inodes (also unreachable ones, whose data
  // was synced before their creation was).
  struct image {
    std::map<std::string, uint64_t> names;
    std::map<uint64_t, std::string> inodes;
  };

  struct lock_table;
  class held_lock;

  static void apply(image& img, const op& o, size_t torn_bytes);
  std::shared_ptr<crash_disk> crashed_locked(size_t keep, size_t torn_bytes) const;
  std::shared_ptr<crash_disk> crash_with(const std::function<uint64_t(uint64_t)>& draw) const;
  const op& pending_op(size_t i) const;
  void begin_op();
  bool dir_exists(const std::string& dir) const;
  void check_open(const std::string& path) const;
  bool has_space(uint64_t grown) const;
  void check_space(const std::string& path, uint64_t grown) const;
  uint64_t create_if_missing(const std::string& path);
  void issue(op o);
  void compact();

  mutable std::mutex mtx_;
  image base_;          // the durable image before the first operation in log_
  image current_;       // what reads see
  std::vector<op> log_; // every operation since base_, in issue order; log_[0] is pending
  size_t pending_ = 0;  // operations in log_ that are not durable
  std::set<std::string> dirs_;
  uint64_t next_inode_ = 1;
  std::shared_ptr<lock_table> locks_; // shared with the held_lock objects, which may outlive us
  size_t syncs_left_ = std::string::npos;
  int sync_err_ = EIO;
  uint64_t capacity_ = UINT64_MAX;
  size_t ops_left_ = std::string::npos;
  bool power_off_ = false;
  uint64_t syncs_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t largest_read_ = 0;
  uint64_t ops_ = 0;
};

} // namespace cafraft::test

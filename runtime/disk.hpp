// The file operations that durable storage needs, behind an interface so that tests can put
// a disk underneath that loses un-synced writes at a simulated crash (tests/crash_disk.hpp).
// Every operation throws disk_error when it fails; nothing is retried (an fsync that failed
// once may have dropped the dirty pages, so a retry that succeeds proves nothing).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace cafraft {

class disk_error : public std::runtime_error {
public:
  disk_error(std::string op, std::string path, int err);
  /// The operation ("fdatasync", "write", ...), the file and the errno value.
  const std::string& op() const { return op_; }
  const std::string& path() const { return path_; }
  int code() const { return code_; }
  /// The disk is full (ENOSPC or EDQUOT).
  bool no_space() const;

private:
  std::string op_;
  std::string path_;
  int code_;
};

/// Held while a data directory is open; releasing it unlocks the directory.
class dir_lock {
public:
  virtual ~dir_lock();
};

/// A file opened for reads of its own (disk::open_reader).
class file_reader {
public:
  virtual ~file_reader();
  /// Up to `len` bytes from `offset` (fewer at the end of the file).
  virtual std::string read_at(uint64_t offset, size_t len) = 0;
};

class disk {
public:
  virtual ~disk();

  /// Creates the directory (and its parents) when missing.
  virtual void make_dirs(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
  /// Names of the regular files in `dir`, sorted.
  virtual std::vector<std::string> list(const std::string& dir) = 0;
  /// The whole content of a file.
  virtual std::string read(const std::string& path) = 0;
  /// Up to `len` bytes from `offset` (fewer at the end of the file).
  virtual std::string read_at(const std::string& path, uint64_t offset, size_t len) = 0;
  /// Opens a file for reads that need no other call of this disk, from any thread: it reads the
  /// file as it was opened even after it is renamed or removed (a snapshot being restored).
  virtual std::unique_ptr<file_reader> open_reader(const std::string& path) = 0;
  /// Appends to a file, creating it when missing. Durable only after sync().
  virtual void append(const std::string& path, std::string_view data) = 0;
  /// Writes at an offset, creating the file when missing. Durable only after sync().
  virtual void write_at(const std::string& path, uint64_t offset, std::string_view data) = 0;
  /// Makes the content of a file durable (fdatasync).
  virtual void sync(const std::string& path) = 0;
  virtual void truncate(const std::string& path, uint64_t size) = 0;
  /// Reserves space so that the file is at least `size` bytes long, the new bytes reading as
  /// zeros (fallocate). Writing into reserved space does not change the file's size, so an
  /// fdatasync after it need not record one. Durable only after sync(). Returns false, having
  /// changed nothing, when the file system cannot (no support for it, or no space: the file
  /// then grows as it is written, and a write that finds no space fails).
  virtual bool preallocate(const std::string& path, uint64_t size) = 0;
  /// Replaces `to` with `from`; durable only after sync_dir() of the directory.
  virtual void rename(const std::string& from, const std::string& to) = 0;
  /// Removes a file; a missing file is not an error.
  virtual void remove(const std::string& path) = 0;
  /// Makes creations, renames and removals in `dir` durable (fsync of the directory).
  virtual void sync_dir(const std::string& dir) = 0;
  /// Takes an exclusive lock on `path` (created when missing). Throws disk_error with EWOULDBLOCK
  /// when another process, or another open of this process, holds it.
  virtual std::unique_ptr<dir_lock> lock(const std::string& path) = 0;
};

/// The real file system (POSIX calls; files stay open between appends).
std::shared_ptr<disk> make_posix_disk();

} // namespace cafraft

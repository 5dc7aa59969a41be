// What a replicated state machine must provide, and the built-in key-value store.
// The state machine actor is the only caller of apply, query, prepare_snapshot and restore;
// those calls never overlap. A snapshot_writer runs in an actor of its own
// (docs/state-machines.md).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cafraft {

/// Where a snapshot_writer puts the bytes of a snapshot, a piece at a time.
class snapshot_sink {
public:
  virtual ~snapshot_sink();
  virtual void write(std::string_view bytes) = 0;
};

/// Where restore() reads a snapshot from, a piece at a time. Reads from disk as it goes: a
/// snapshot is never read into memory whole.
class snapshot_source {
public:
  virtual ~snapshot_source();
  /// Reads up to `n` bytes into `buf`; returns how many, 0 only at the end of the snapshot.
  /// Throws std::runtime_error when the snapshot cannot be read.
  virtual size_t read(char* buf, size_t n) = 0;
  /// The snapshot's size in bytes.
  virtual uint64_t size() const = 0;
  /// Reads exactly `n` bytes; false when the snapshot ends first.
  bool read_exact(char* buf, size_t n);
};

/// The state as it was when prepare_snapshot() returned, written out a piece at a time. It runs
/// in its own actor while the state machine goes on applying entries, so it must not read what
/// apply() changes: it holds its own copy, or keeps what apply() changes as it was (kv_store
/// does).
class snapshot_writer {
public:
  virtual ~snapshot_writer();
  /// Writes the next piece into `out` and returns true, or returns false when everything was
  /// written. A piece should be small (KiBs to a few MiB): the runtime holds at most one piece
  /// and one chunk for storage in memory.
  virtual bool write_next(snapshot_sink& out) = 0;
};

class state_machine {
public:
  virtual ~state_machine();
  /// Applies the committed command at `index`. Must be deterministic: every node applies the
  /// same commands in the same order and must reach the same state. Returns the result that
  /// the proposer receives. Must not throw for a malformed command: return an error result.
  virtual std::string apply(uint64_t index, const std::string& command) = 0;
  /// Answers a read-only query against the current state (a client's pb::QueryRequest, or for
  /// the KV store a pb::KvQuery); the answer goes back to the client as it is.
  virtual std::string query(const std::string& query) const = 0;
  /// Captures the state as of the last applied entry. Called between two applies; should be
  /// quick (applies wait for it). The writer then runs while applies go on.
  virtual std::unique_ptr<snapshot_writer> prepare_snapshot() = 0;
  /// Replaces the whole state with the snapshot's. Returns false when it is malformed (the
  /// state must then be as it was; the node stops).
  virtual bool restore(snapshot_source& in) = 0;
};

/// A writer for a state small enough to copy: writes `bytes` in pieces.
std::unique_ptr<snapshot_writer> write_string(std::string bytes);

/// Reads a whole source into a string (for small states and tests).
std::string read_all(snapshot_source& in);

/// A source over bytes in memory.
std::unique_ptr<snapshot_source> string_source(std::string bytes);

/// The whole snapshot of `sm` as a string, and a restore from one (tests, small states).
std::string snapshot_to_string(state_machine& sm);
bool restore_from_string(state_machine& sm, std::string bytes);

/// The built-in replicated key-value store. Commands are encoded pb::KvCommand, queries
/// pb::KvQuery, query answers pb::GetResponse, apply results pb::KvResult.
///
/// The pairs live in 4096 shards by a hash of the key, each made when a key first lands in it
/// (an empty store, as in each of many idle groups, holds only the table of 4096 slots: 32 KiB).
/// A snapshot costs no copy of the state:
/// its writer goes through the shards one at a time while applies go on, and an apply that
/// changes a key in a shard the writer has not reached yet first keeps the key's value as it
/// was (an undo record) for the writer. Memory during a snapshot thus grows by the old values
/// of the keys written meanwhile, not by the state (docs/performance.md).
class kv_store : public state_machine {
public:
  kv_store();
  ~kv_store() override;
  std::string apply(uint64_t index, const std::string& command) override;
  std::string query(const std::string& query) const override;
  std::unique_ptr<snapshot_writer> prepare_snapshot() override;
  bool restore(snapshot_source& in) override;

  /// Every pair, in key order (a copy: tests and tools).
  std::map<std::string, std::string> data() const;
  size_t size() const;
  /// The snapshot as a string, and a restore from one (tests, tools).
  std::string snapshot() { return snapshot_to_string(*this); }
  bool restore(const std::string& bytes) { return restore_from_string(*this, bytes); }

  static constexpr size_t shard_count = 4096;
  struct shard;
  using shards = std::vector<std::unique_ptr<shard>>;

private:
  /// The shard of `key`; null while no key has landed in it.
  shard* find_shard(const std::string& key) const;
  /// The same, made if missing.
  shard& shard_for(const std::string& key);

  /// Shared with a snapshot writer, which may outlive the store or a restore.
  std::shared_ptr<shards> shards_;
};

} // namespace cafraft

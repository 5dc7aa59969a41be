// The leader's bookkeeping, without CAF: one progress record per follower (next and match
// index, the pipelining window), the commit rule, and ReadIndex rounds. The leader actor feeds
// it events and sends what it returns.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <cafraft/runtime/raft_state.hpp>

namespace cafraft {

struct peer_progress {
  uint64_t incarnation = 0; // of the member this record is for; other answers are ignored
  // Removed from the configuration: still sent entries and the commit index, so that it learns
  // of its removal and stops, until it acknowledged the removal after it was committed (or
  // departing_ticks heartbeat ticks after the commit passed); counted in no majority.
  bool departing = false;
  uint64_t departing_index = 0;
  uint64_t departing_ticks = 0;
  uint64_t next = 1;   // next index to send
  uint64_t match = 0;  // highest index known replicated; never decreases within a term
  uint64_t sent = 0;   // highest index sent while replicating
  size_t inflight = 0; // AppendEntries with entries not yet answered
  bool probing = true; // probe: one message at a time until the follower's log matches
  uint64_t match_at_last_tick = 0;
  uint64_t read_acked = 0;    // highest ReadIndex round the follower answered in this term
  bool recent_active = false; // answered since the last check-quorum
  uint32_t feature_level = 0; // what its binary supports, as it last said; 0: not heard yet
  // The follower needs entries that the leader's log no longer has: it gets the snapshot,
  // one chunk at a time (§7), and no AppendEntries until it is installed.
  bool snapshotting = false;
  uint64_t snapshot_index = 0;  // the snapshot being sent
  uint64_t snapshot_offset = 0; // where the next chunk starts (what the follower holds)
  bool chunk_inflight = false;
  uint64_t ticks_waited = 0; // heartbeat ticks since the chunk in flight was sent or advanced
  uint64_t resend_after = 1; // ticks without progress before a resend (doubles, up to 64)
};

struct replication_limits {
  size_t max_batch_entries = 512;
  size_t max_batch_bytes = 1 << 20;
  size_t max_inflight = 16;
};

class replication {
public:
  replication(raft_state& s, replication_limits limits);

  enum class send_mode {
    entries,   // only new entries the window allows
    heartbeat, // at least one message (it carries commit index and read round)
    tick,      // heartbeat, and retransmit what went unanswered since the last tick
  };

  /// The configuration changed: members that joined get a progress record (learners too: they
  /// receive the log but are not counted); members that left are departing (see
  /// peer_progress::departing) until they know.
  void on_config_change();

  /// AppendEntries to send to `peer` now.
  std::vector<pb::AppendEntries> to_send(const std::string& peer, send_mode mode);

  /// Records a response of the current term. Returns true when commit_index advanced.
  bool on_response(const pb::AppendEntriesResponse& resp);

  /// When `peer` is to get a snapshot chunk now: the offset it starts at. The leader reads the
  /// chunk from storage and hands it to chunk_read().
  std::optional<uint64_t> snapshot_chunk_due(const std::string& peer, send_mode mode);
  /// A chunk of the snapshot ending at `snapshot_index` was read for `peer` at `offset`. Returns
  /// true when it is to be sent; false when the snapshot changed meanwhile (the transfer starts
  /// over with the new one: ask snapshot_chunk_due() again).
  bool chunk_read(const std::string& peer, uint64_t snapshot_index, uint64_t offset);
  /// Records an InstallSnapshotResponse of the current term. Returns true when commit_index
  /// advanced.
  bool on_snapshot_response(const pb::InstallSnapshotResponse& resp);

  /// Forgets departing members that know of their removal, or that did not answer for
  /// `max_ticks` heartbeat ticks. Returns their ids.
  std::vector<std::string> drop_departed(uint64_t max_ticks);

  /// The leader's own log is durable through `index`. Returns true when commit_index advanced.
  bool on_local_persisted(uint64_t index);

  /// Check-quorum: did a majority of voters (this leader included) answer since the last
  /// call? Starts the next period.
  bool quorum_active();

  /// Starts a ReadIndex round (thesis §6.4) and returns its number.
  uint64_t new_read_round() { return ++read_round_; }
  /// Highest read round acknowledged by a majority of voters in this term.
  uint64_t confirmed_read_round() const;

  const std::map<std::string, peer_progress>& progress() const { return progress_; }
  uint64_t local_persisted() const { return local_persisted_; }

private:
  pb::AppendEntries make_append(uint64_t prev, uint64_t max_entries);
  /// Whether `p` gets the snapshot (starting a transfer when its next entry was dropped).
  bool needs_snapshot(peer_progress& p);
  bool advance_commit();

  raft_state& s_;
  replication_limits limits_;
  std::map<std::string, peer_progress> progress_;
  uint64_t local_persisted_ = 0;
  uint64_t read_round_ = 0;
};

} // namespace cafraft
